"""The batch engine end to end against the emulator (real HTTP on 127.0.0.1), without Airflow's scheduler:
many runs in flight, faults, limits, and tries cut short at the two dangerous moments, between an invoke's
intent and its run id, and between a run id and its result row."""

from __future__ import annotations

import json
import logging

import pytest

from airflow_provider_alta._batch.client import HookClient
from airflow_provider_alta._batch.location import resolve
from airflow_provider_alta._batch.results import ResultWriter
from airflow_provider_alta._batch.runner import BatchRunner
from airflow_provider_alta._batch.source import ItemSource
from airflow_provider_alta._core.batch_outcomes import StopReason
from airflow_provider_alta._core.batch_plan import BatchSettings
from airflow_provider_alta._core.polling import PollingSettings
from airflow_provider_alta._core.request_retry import RetrySettings
from airflow_provider_alta.exceptions import AltaBatchFailedError, AltaContractError
from airflow_provider_alta.hooks.alta import AltaAsyncHook

pytestmark = pytest.mark.usefixtures("alta_conn")

FAST = PollingSettings(min_interval=0.05, max_interval=1.0)
QUICK_RETRIES = RetrySettings(backoff_initial=0.05, backoff_max=0.2, max_wait=20)


class Crash(BaseException):
    """A worker lost at this very point: nothing after it runs, nothing is flushed on the way out."""


def topics(n):
    return [{"topic": f"T{i}"} for i in range(n)]


async def run_batch(
    output, given, *, key_field=None, max_failed_items=None, rerun_failed=False, chunk_rows=1000, **settings
):
    settings.setdefault("max_active_runs", 8)
    runner = BatchRunner(
        source=ItemSource(items=given, key_field=key_field),
        output=resolve(output, "output_path"),
        settings=BatchSettings(polling=FAST, retry=QUICK_RETRIES, quiet_period=0.5, **settings),
        max_failed_items=max_failed_items,
        rerun_failed=rerun_failed,
        body=lambda index, item: {"input": item, "isAsync": True},
        log=logging.getLogger("alta.batch.test"),
        chunk_rows=chunk_rows,
    )
    runner.prepare()
    async with AltaAsyncHook() as hook:
        report = await runner.run(HookClient(hook), budget=hook.budget, outage=None)
    runner.finish(report)
    return report


def rows(output):
    folder = resolve(output, "output_path")
    found = []
    for part in folder.files(".jsonl"):
        with part.fs.open(part.path, "rb") as data:
            found += [json.loads(line) for line in data]
    return found


def crash_when_journal_gets(runner_journal_cls, monkeypatch, event):
    """The next journal append holding an ``event`` record dies before it is written."""
    original = runner_journal_cls.append

    def append(self, records):
        if any(r["event"] == event for r in records):
            raise Crash(event)
        return original(self, records)

    monkeypatch.setattr(runner_journal_cls, "append", append)


async def test_a_batch_runs_every_item_once_many_at_a_time(alta_emulator, tmp_path):
    alta_emulator.configure(api_key=alta_emulator.api_key, duration=0.2, input_schema=None)
    given = [{"id": f"k{i}", "topic": f"T{i}"} for i in range(40)]
    report = await run_batch(str(tmp_path), given, key_field="id")
    assert report.error is None and report.verdict() is None
    manifest = report.manifest()
    assert (manifest["total"], manifest["succeeded"], manifest["failed"], manifest["complete"]) == (40, 40, 0, True)
    assert manifest["total_cost"] == pytest.approx(40 * 0.6928) and manifest["total_tokens"] == 40 * 1745
    found = rows(str(tmp_path))
    assert sorted(r["key"] for r in found) == sorted(i["id"] for i in given)
    assert alta_emulator.invoke_count() == 40
    stats = alta_emulator.stats()
    assert stats["runs"] == 40
    by_key = {r["key"]: r for r in found}
    assert by_key["k7"]["output"] == alta_emulator.run(by_key["k7"]["workflow_run_id"])["body"]["output"]
    assert report.queries <= 2 * 40  # one query per run, mostly: the batch learns its runs' length
    counters = alta_emulator.key_stats()
    assert counters["peak_in_flight"] <= 8 and counters["duplicate_runs"] == 0


async def test_a_try_lost_between_intent_and_run_id_never_pays_twice(alta_emulator, tmp_path, monkeypatch):
    from airflow_provider_alta._batch.journal import Journal

    alta_emulator.configure(api_key=alta_emulator.api_key, duration=0.3)
    with monkeypatch.context() as patch:
        crash_when_journal_gets(Journal, patch, "run")
        with pytest.raises(Crash):
            await run_batch(str(tmp_path), topics(20), max_active_runs=5)
    paid_by_the_lost_try = alta_emulator.invoke_count()
    assert 1 <= paid_by_the_lost_try <= 5  # answered by Alta, never recorded
    report = await run_batch(str(tmp_path), topics(20), max_active_runs=5)
    assert alta_emulator.invoke_count() == 20  # one paid run per item, the lost ones included
    found = rows(str(tmp_path))
    assert sorted(r["key"] for r in found) == list(range(20))
    unknown = [r for r in found if r["status"] == "UNKNOWN"]
    assert len(unknown) == report.manifest()["this_try"]["lost_invokes"] >= paid_by_the_lost_try
    assert all("a previous try was lost while this item's invoke was open" in r["error"] for r in unknown)


async def test_a_lost_invoke_is_sent_again_only_when_allowed(alta_emulator, tmp_path, monkeypatch):
    from airflow_provider_alta._batch.journal import Journal

    alta_emulator.configure(api_key=alta_emulator.api_key, duration=0.2)
    with monkeypatch.context() as patch:
        crash_when_journal_gets(Journal, patch, "run")
        with pytest.raises(Crash):
            await run_batch(str(tmp_path), topics(6), max_active_runs=2)
    lost = alta_emulator.invoke_count()
    report = await run_batch(str(tmp_path), topics(6), max_active_runs=2, retry_on_unknown_outcome=True)
    assert report.manifest()["succeeded"] == 6
    assert alta_emulator.invoke_count() == 6 + lost  # the user allowed a second run for those


async def test_a_try_lost_between_run_id_and_result_reattaches_without_invoking(alta_emulator, tmp_path, monkeypatch):
    alta_emulator.configure(api_key=alta_emulator.api_key, duration=0.3)
    original = ResultWriter.flush
    with monkeypatch.context() as patch:

        def flush(self):
            if self.pending:
                raise Crash("results")
            return original(self)

        patch.setattr(ResultWriter, "flush", flush)
        with pytest.raises(Crash):
            await run_batch(str(tmp_path), topics(12), max_active_runs=4, chunk_rows=5)
    assert rows(str(tmp_path)) == []
    invoked = alta_emulator.invoke_count()
    report = await run_batch(str(tmp_path), topics(12), max_active_runs=4, chunk_rows=5)
    assert report.manifest()["this_try"]["reattached"] >= 1
    assert alta_emulator.invoke_count() == 12 and invoked + report.invokes == 12
    found = rows(str(tmp_path))
    assert sorted(r["key"] for r in found) == list(range(12)) and {r["status"] for r in found} == {"SUCCEED"}


async def test_a_finished_batch_cleared_with_the_same_items_sends_nothing(alta_emulator, tmp_path):
    alta_emulator.configure(api_key=alta_emulator.api_key, duration=0.1)
    await run_batch(str(tmp_path), topics(5))
    requests = alta_emulator.request_count()
    runner = BatchRunner(
        source=ItemSource(items=topics(5)),
        output=resolve(str(tmp_path), "output_path"),
        settings=BatchSettings(),
        max_failed_items=None,
        rerun_failed=False,
        body=dict,
        log=logging.getLogger("alta.batch.test"),
    )
    runner.prepare()
    assert runner.nothing_to_do and runner.report().manifest()["succeeded"] == 5
    assert alta_emulator.request_count() == requests


async def test_faults_are_ridden_out_or_recorded_item_by_item(alta_emulator, tmp_path):
    alta_emulator.configure(api_key=alta_emulator.api_key, duration=0.2)
    # Invoke faults count their ``after`` once the earlier ones are spent: 429s on invokes 4 to 7, 503s on 10
    # and 11, the answer to invoke 13 lost after its run started (paid).
    alta_emulator.inject("invoke", "status", status=429, body="CONCURRENCY_LIMIT_EXCEEDED", count=4, after=3)
    alta_emulator.inject("invoke", "status", status=503, count=2, after=2)
    alta_emulator.inject("invoke", "drop_after", count=1, after=1)
    alta_emulator.inject("query", "drop", count=3)
    alta_emulator.inject("query", "status", status=502, count=2, after=5)
    given = [*topics(18), {"subject": "no topic"}]  # the workflow's Start node needs a topic
    report = await run_batch(str(tmp_path), given, max_active_runs=6)
    found = {r["key"]: r for r in rows(str(tmp_path))}
    assert len(found) == 19
    statuses = sorted(r["status"] for r in found.values())
    assert statuses.count("REFUSED") == 1 and "INVALID_INPUT" in found[18]["error"]
    assert statuses.count("UNKNOWN") == 1 and statuses.count("SUCCEED") == 17
    assert alta_emulator.stats()["runs"] == 18  # the refused input started nothing; the others one run each
    assert report.verdict() is None


async def test_altas_concurrency_limit_is_found_and_kept_to(alta_emulator, tmp_path):
    alta_emulator.configure(api_key=alta_emulator.api_key, duration=0.3, concurrency_limit=4)
    report = await run_batch(str(tmp_path), topics(40), max_active_runs=10)
    assert report.manifest()["succeeded"] == 40
    counters = alta_emulator.key_stats()
    assert counters["runs"] == 40 and counters["duplicate_runs"] == 0 and counters["peak_in_flight"] <= 4
    # The first wave meets the limit once, then the batch keeps to what Alta accepted and probes above it
    # once per quiet period: refusals stay few, never one per item.
    assert 1 <= counters["concurrency_refused"] <= 20
    assert report.queries <= 3 * 40


async def test_per_input_outcomes_are_recorded_item_by_item(alta_emulator, tmp_path):
    alta_emulator.configure(api_key=alta_emulator.api_key, duration=0.2, duration_jitter=0.1, input_schema=None)
    given = [{"id": n, "_alta_emulator": {"fail": "no content"}} if n % 5 == 0 else {"id": n} for n in range(20)]
    given[3] = {"id": 3, "_alta_emulator": {"refuse": 422}}
    report = await run_batch(str(tmp_path), given, key_field="id", max_active_runs=6)
    found = {r["key"]: r for r in rows(str(tmp_path))}
    assert [k for k, r in sorted(found.items()) if r["status"] == "FAILED"] == [0, 5, 10, 15]
    assert found[5]["error"] == "no content" and found[5]["workflow_run_id"]
    assert found[3]["status"] == "REFUSED" and "UNPROCESSABLE_INPUT" in found[3]["error"]
    assert report.tally.succeeded == 15 and report.verdict() is None  # no max_failed_items: every item is tried
    assert sorted(report.failed_keys) == [0, 3, 5, 10, 15]
    assert alta_emulator.key_stats()["runs"] == 19


async def test_failed_runs_are_recorded_and_max_failed_items_stops_the_batch(alta_emulator, tmp_path):
    alta_emulator.configure(api_key=alta_emulator.api_key, duration=0.1, outcome="fail")
    report = await run_batch(str(tmp_path), topics(30), max_active_runs=2, max_failed_items=0.1)
    assert report.stop_reason is StopReason.MAX_FAILED_ITEMS
    found = rows(str(tmp_path))
    assert 4 <= len(found) <= 6 and {r["status"] for r in found} == {"FAILED"}
    assert "Summarise" in found[0]["error"]
    error = report.verdict()
    assert isinstance(error, AltaBatchFailedError) and "more than max_failed_items allows (3)" in str(error)
    assert "rerun_failed=True" in str(error) and alta_emulator.invoke_count() == len(found)


async def test_rerun_failed_runs_only_the_failed_items_again(alta_emulator, tmp_path):
    alta_emulator.configure(api_key=alta_emulator.api_key, duration=0.1, outcome="fail")
    await run_batch(str(tmp_path), topics(3), max_active_runs=1, max_cost=0.4)  # one FAILED run, then the budget
    alta_emulator.configure(api_key=alta_emulator.api_key, duration=0.1)
    report = await run_batch(str(tmp_path), topics(3), rerun_failed=True)
    found = rows(str(tmp_path))
    assert sorted(r["key"] for r in found) == [0, 1, 2] and {r["status"] for r in found} == {"SUCCEED"}
    assert report.rerun == 1 and alta_emulator.invoke_count() == 4


async def test_max_cost_stops_starting_runs_and_says_what_is_left(alta_emulator, tmp_path):
    alta_emulator.configure(api_key=alta_emulator.api_key, duration=0.1)
    report = await run_batch(str(tmp_path), topics(10), max_cost=2.5)
    assert report.stop_reason is StopReason.MAX_COST
    assert report.tally.cost <= 2.5 and report.tally.done == alta_emulator.invoke_count() == 3
    error = report.verdict()
    assert isinstance(error, AltaContractError) and "the 7 items left were not started" in str(error)
