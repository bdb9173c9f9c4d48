"""AltaWorkflowRunTrigger and AltaAsyncHook against the emulator, in one asyncio loop."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import time

import pytest

from airflow_provider_alta._airflow.finishing import run_from_event
from airflow_provider_alta._core.waiting import OUTAGE_WARNING_INTERVAL
from airflow_provider_alta.exceptions import AltaAuthError, AltaError
from airflow_provider_alta.hooks.alta import AltaAsyncHook, AltaHook, session_pool
from airflow_provider_alta.triggers.alta import AltaWorkflowRunTrigger
from tests.conftest import SECRET_KEY
from tests.dag_runner import log_lines

FAST = {"min_interval": 0.2, "max_interval": 0.5, "jitter": 0.0}

pytestmark = pytest.mark.usefixtures("alta_conn")


def start_run(duration: float, emulator, **config) -> str:
    emulator.configure(duration=duration, **config)
    return AltaHook().invoke_workflow({"topic": "AI"}, is_async=True).workflow_run_id


async def events(trigger: AltaWorkflowRunTrigger) -> list[dict]:
    return [event.payload async for event in trigger.run()]


def test_serialize_round_trip_is_plain_json_without_secrets():
    trigger = AltaWorkflowRunTrigger("run-1", "alta_default", deadline=1_900_000_000.5, started_at=1.0, polling=FAST)
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_alta.triggers.alta.AltaWorkflowRunTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert SECRET_KEY not in json.dumps(kwargs)
    rebuilt = AltaWorkflowRunTrigger(**kwargs)
    assert rebuilt.serialize() == (path, kwargs)


async def test_success_event_carries_final_run_but_not_its_input(alta_emulator):
    run_id = start_run(0.8, alta_emulator)
    got = await events(AltaWorkflowRunTrigger(run_id, polling=FAST))
    assert len(got) == 1
    assert got[0]["status"] == "success" and got[0]["workflow_run_id"] == run_id
    body = dict(alta_emulator.run(run_id)["body"])
    assert body.pop("input") == {"topic": "AI"}
    assert got[0]["run"] == body
    assert session_pool.open_sessions() == 0  # released after the event


async def test_event_log_line_leaves_the_output_out(alta_emulator):
    run_id = start_run(0.3, alta_emulator)
    (event,) = [event async for event in AltaWorkflowRunTrigger(run_id, polling=FAST).run()]
    output = json.dumps(event.payload["run"]["output"])
    assert len(output) > 20
    for shown in (repr(event), str(event), f"{event}"):
        assert run_id in shown and "<not logged>" in shown
        assert output not in shown and output[1:21] not in shown


async def test_failed_event(alta_emulator):
    run_id = start_run(0.3, alta_emulator, outcome="fail")
    (event,) = await events(AltaWorkflowRunTrigger(run_id, polling=FAST))
    assert event["status"] == "failed" and event["run"]["status"] == "FAILED"


async def test_timeout_with_deadline_already_past(alta_emulator):
    run_id = start_run(30, alta_emulator)
    (event,) = await events(AltaWorkflowRunTrigger(run_id, deadline=time.time() - 5, polling=FAST))
    assert event["status"] == "timeout" and run_id in event["message"]
    assert alta_emulator.request_count("query") <= 1


async def test_timeout_passing_mid_wait(alta_emulator):
    run_id = start_run(30, alta_emulator)
    began = time.time()
    (event,) = await events(AltaWorkflowRunTrigger(run_id, deadline=time.time() + 1.0, polling=FAST))
    assert event["status"] == "timeout"
    assert 0.9 <= time.time() - began < 3


async def test_auth_error_fails_at_once(alta_emulator, monkeypatch):
    run_id = start_run(30, alta_emulator)
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", alta_emulator.connection_uri("revoked-key"))
    (event,) = await events(AltaWorkflowRunTrigger(run_id, polling=FAST))
    assert event["status"] == "error" and "AltaAuthError" in event["message"]
    assert alta_emulator.request_count("query") == 1
    # The event names the error's class and facts, so the task raises that same error (and fails fast).
    assert event["error"]["kind"] == "AltaAuthError" and event["error"]["status"] == 401
    assert "revoked-key" not in json.dumps(event) and SECRET_KEY not in json.dumps(event)
    with pytest.raises(AltaAuthError) as err:
        run_from_event(event, run_id)
    assert str(err.value) == event["message"].removeprefix("AltaAuthError: ")
    # An error event of an earlier trigger (no "error" key) still ends in a plain, retryable error.
    old = {k: v for k, v in event.items() if k != "error"}
    with pytest.raises(AltaError) as plain_err:
        run_from_event(old, run_id)
    assert type(plain_err.value) is AltaError and "AltaAuthError" in str(plain_err.value)


async def test_rate_limit_and_5xx_waited_out_without_hammering(alta_emulator):
    run_id = start_run(0.5, alta_emulator)
    alta_emulator.inject("query", "status", status=429, retry_after=1)
    alta_emulator.inject("query", "status", status=503, count=2)
    alta_emulator.inject("query", "status", status=502)
    (event,) = await events(AltaWorkflowRunTrigger(run_id, polling=FAST))
    assert event["status"] == "success"
    times = alta_emulator.request_times("query")
    assert len(times) >= 5
    assert times[1] - times[0] >= 0.95  # Retry-After honoured
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.15  # never a tight loop


async def test_async_hook_get_run_and_shared_session(alta_emulator):
    run_id = start_run(0.1, alta_emulator)
    async with AltaAsyncHook() as first, AltaAsyncHook() as second:
        assert first._session is second._session
        runs = await asyncio.gather(first.get_run(run_id), second.get_run(run_id))
    assert {r.workflow_run_id for r in runs} == {run_id}
    assert session_pool.open_sessions() == 0


async def test_thirty_triggers_share_one_budget(alta_emulator):
    """30 naive 0.2 s pollers would send ~150 queries in 1 s; the key allows 48 per 5 s, invokes included."""
    alta_emulator.configure(duration=1.0, rate_limit=48, rate_window=5)
    hook = AltaHook()
    run_ids = [hook.invoke_workflow({"topic": f"t{i}"}, is_async=True).workflow_run_id for i in range(30)]
    triggers = [AltaWorkflowRunTrigger(r, polling={"min_interval": 0.2, "max_interval": 30}) for r in run_ids]
    results = await asyncio.wait_for(asyncio.gather(*(events(t) for t in triggers)), timeout=60)
    statuses = [r[0]["status"] for r in results]
    assert statuses == ["success"] * 30
    answers = [e["status"] for e in alta_emulator.stats()["request_log"]]
    assert 429 not in answers
    assert alta_emulator.request_count("query") <= 2 * 48 - 30


async def test_known_pending_run_waits_one_interval_before_first_query(alta_emulator):
    run_id = start_run(0.5, alta_emulator)
    began = time.time()
    trigger = AltaWorkflowRunTrigger(
        run_id, polling={**FAST, "min_interval": 0.6, "max_interval": 1.0}, last_status="PENDING"
    )
    (event,) = await events(trigger)
    assert event["status"] == "success"
    times = alta_emulator.request_times("query")
    assert times[0] - began >= 0.55
    assert len(times) == 1  # the run had ended by the first query


async def test_an_outage_is_told_at_once_then_throttled_and_its_end_told(alta_emulator, capsys, caplog):
    """Alta drops a connection, then answers 503 three times: the trigger's log says so while it waits.

    One warning (the URL, the error's class, the next attempt) for the whole streak, which lasts well under the
    throttle window; one line when Alta answers again; never the key.
    """
    caplog.set_level(logging.INFO)
    run_id = start_run(0.5, alta_emulator)
    alta_emulator.inject("query", "drop")
    alta_emulator.inject("query", "status", status=503, count=3)
    began = time.time()
    (event,) = await events(AltaWorkflowRunTrigger(run_id, polling=FAST))
    assert event["status"] == "success"
    assert time.time() - began < OUTAGE_WARNING_INTERVAL
    lines = log_lines(capsys, caplog, AltaWorkflowRunTrigger.__name__)
    url = f"{alta_emulator.url}/v1/workflow/query/result"
    warnings = [line for line in lines if line.startswith("[warning")]
    assert len(warnings) == 1, lines
    assert f"Alta query to {url} failed with AltaTransportError" in warnings[0]
    assert re.search(r"next attempt in \d+\.\d s \(at \d\d:\d\d:\d\d UTC\)", warnings[0]), warnings[0]
    recovered = [line for line in lines if "answers again" in line]
    assert len(recovered) == 1 and recovered[0].startswith("[info"), lines
    assert re.search(rf"Alta at {re.escape(url)} answers again, after 4 failed queries over \d+ s", recovered[0])
    assert SECRET_KEY not in "\n".join(lines) + caplog.text
