"""Batches that complete by webhook, in one process: emulator → receiver (uvicorn on 127.0.0.1) → the table →
the batch's reads. A delivery ends its item without a query, a lost one is caught by the fallback query, and a
retry learns from the deliveries the runs a lost try never heard answered."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from airflow_provider_alta._batch.client import HookClient
from airflow_provider_alta._batch.deliveries import Deliveries
from airflow_provider_alta._batch.journal import Journal
from airflow_provider_alta._batch.location import resolve
from airflow_provider_alta._batch.runner import BatchRunner
from airflow_provider_alta._batch.source import ItemSource
from airflow_provider_alta._core.batch_plan import BatchSettings
from airflow_provider_alta._core.polling import PollingSettings
from airflow_provider_alta._webhook.batch_contract import batch_id_of
from airflow_provider_alta._webhook.batch_notice_reader import BatchNoticeReader, batch_notices_url
from airflow_provider_alta._webhook.contract import WebhookSettings
from airflow_provider_alta.hooks.alta import AltaAsyncHook
from tests._batch.test_batch_driver import Crash, crash_when_journal_gets, rows
from tests.conftest import SECRET_KEY
from tests.operators.test_batch_operator import batch_dags
from tests.plugins.receiver_support import use_receiver

WEBHOOK_SECRET = "whs-batch-SECRET-5d1e7f20"


@pytest.fixture
def webhooks(alta_conn, alta_emulator, receiver_url, monkeypatch) -> Any:
    """The receiver set up, the API server found at its URL, the connection holding a webhook secret."""
    use_receiver(monkeypatch, receiver_url, alta_emulator, WEBHOOK_SECRET, retry_backoff=0.1)
    return alta_emulator


def left_in_the_table(run_ids: list[str]) -> int:
    """The receiver's rows still held for these runs."""
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    from airflow_provider_alta._webhook.batch_notice_store import BATCH_NOTICES, ensure_table

    ensure_table()
    with create_session() as session:
        query = select(func.count()).where(BATCH_NOTICES.c.workflow_run_id.in_(run_ids))
        return int(session.scalar(query) or 0)


def folder_rows(folder) -> list[dict[str, Any]]:
    return [json.loads(line) for part in sorted(folder.glob("part-*.jsonl")) for line in part.read_text().splitlines()]


def test_a_batch_ends_its_runs_by_webhook_with_one_request_per_item(webhooks, tmp_path, monkeypatch, capsys):
    webhooks.configure(duration=0.3, input_schema=None)
    monkeypatch.setenv("AIRFLOW_VAR_ALTA_BATCH_OUT", str(tmp_path))
    dag_run = batch_dags().webhook.test()
    (ti,) = dag_run.get_task_instances()
    assert ti.state == "success", capsys.readouterr().out[-3000:]
    found = folder_rows(tmp_path / "webhook")
    assert sorted(row["key"] for row in found) == [f"w-{n}" for n in range(8)]
    assert {row["status"] for row in found} == {"SUCCEED"} and all(row["output"]["news"] for row in found)
    deliveries = webhooks.stats()["webhook_deliveries"]
    assert len(deliveries) == 8 and {d["status"] for d in deliveries} == {200}
    assert all("/alta/webhook/batch/b1/alta_default/" in d["url"] for d in deliveries)
    stats = webhooks.key_stats(SECRET_KEY)
    assert (stats["invokes"], stats["queries"]) == (8, 0)  # one request per item: the deliveries ended every run
    manifest = ti.xcom_pull(task_ids="by_webhook")
    assert manifest["this_try"]["webhook_deliveries"] == 8 and manifest["succeeded"] == 8
    out = capsys.readouterr().out
    assert "8 webhook deliveries" in out and WEBHOOK_SECRET not in out
    assert left_in_the_table([row["workflow_run_id"] for row in found]) == 0  # read, acknowledged, forgotten


def test_lost_deliveries_are_caught_by_the_fallback_queries(webhooks, tmp_path, monkeypatch):
    webhooks.configure(duration=0.2, webhook_copies=0, input_schema=None)
    monkeypatch.setenv("AIRFLOW_VAR_ALTA_BATCH_OUT", str(tmp_path))
    dag_run = batch_dags().webhook_lost.test()
    (ti,) = dag_run.get_task_instances()
    assert ti.state == "success"
    assert {row["status"] for row in folder_rows(tmp_path / "lost")} == {"SUCCEED"}
    assert webhooks.stats()["webhook_deliveries"] == []
    stats = webhooks.key_stats(SECRET_KEY)
    assert stats["invokes"] == 4 and stats["queries"] >= 4  # each run's end learned by its fallback query


async def test_a_retry_learns_the_runs_a_lost_try_never_heard_answered(webhooks, tmp_path, monkeypatch):
    """The first try dies after Alta answered its invokes but before their run ids were recorded: without
    webhooks those items would end UNKNOWN. Their deliveries, kept by the receiver, name the runs."""
    webhooks.configure(duration=0.2, input_schema=None)
    items = [{"topic": f"L{n}"} for n in range(6)]
    output = str(tmp_path / "out")

    def runner() -> BatchRunner:
        settings = BatchSettings(
            max_active_runs=6, polling=PollingSettings(min_interval=0.05), webhooks=True, webhook_fallback=30.0
        )
        return BatchRunner(
            source=ItemSource(items=items),
            output=resolve(output, "output_path"),
            settings=settings,
            max_failed_items=None,
            rerun_failed=False,
            body=lambda index, item: {"input": item, "isAsync": True, "webhook": [deliveries.entry(index)]},
            log=logging.getLogger("alta.batch.test"),
        )

    first = runner()
    first.prepare()
    batch_id = batch_id_of("alta_default", "d", "r", "t", -1, first.survey.fingerprint, first.output.uri)

    def open_deliveries() -> Deliveries:
        settings = WebhookSettings.from_config()
        reader = BatchNoticeReader(batch_notices_url(), "alta_default", batch_id, WEBHOOK_SECRET)
        return Deliveries(
            settings=settings,
            secret=WEBHOOK_SECRET,
            conn_type="alta",
            conn_id="alta_default",
            batch_id=batch_id,
            reader=reader,
            check_interval=0.05,
            log=logging.getLogger("alta.batch.test"),
        )

    deliveries = open_deliveries()
    with monkeypatch.context() as crash:
        crash_when_journal_gets(Journal, crash, "run")
        with pytest.raises(Crash):
            async with AltaAsyncHook() as hook:
                await first.run(HookClient(hook), budget=hook.budget, outage=None, deliveries=deliveries)
    assert webhooks.key_stats(SECRET_KEY)["runs"] == 6

    second = runner()
    second.prepare()
    assert len(second.resume.lost) == 6
    deliveries = open_deliveries()
    async with AltaAsyncHook() as hook:
        report = await second.run(HookClient(hook), budget=hook.budget, outage=None, deliveries=deliveries)
    second.finish(report)
    found = rows(output)
    assert sorted(row["status"] for row in found) == ["SUCCEED"] * 6
    assert all(row["output"]["news"] and row["workflow_run_id"] for row in found)
    assert (report.invokes, report.found) == (0, 6)  # nothing invoked again: every lost invoke's run was named
    stats = webhooks.key_stats(SECRET_KEY)
    assert (stats["runs"], stats["duplicate_runs"]) == (6, 0)
