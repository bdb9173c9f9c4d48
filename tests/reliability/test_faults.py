"""Injected faults on every path, against the emulator: nothing lost, no duplicate run, no tight loop, no leak.

Paths: synchronous invoke, asynchronous invoke, hook polling (``wait_for_run``),
trigger polling, and the sensor's poke. Each fault is injected on the endpoint
the path uses; the expected outcome follows from two rules:

* a query may be repeated, so a transient fault is waited out and an
  unreadable answer is a typed ``AltaInvalidResponseError``;
* an invoke may be repeated only when Alta provably did not take it (429,
  503, refused connection); anything else ambiguous is an
  ``AltaInvokeOutcomeUnknownError`` and never a second request.
"""

from __future__ import annotations

import itertools
import json
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_provider_alta._core.polling import PollingSettings
from airflow_provider_alta.exceptions import (
    AltaError,
    AltaInvalidResponseError,
    AltaInvokeOutcomeUnknownError,
)
from airflow_provider_alta.hooks.alta import AltaHook
from airflow_provider_alta.sensors.alta import AltaWorkflowRunSensor
from airflow_provider_alta.triggers.alta import AltaWorkflowRunTrigger
from tests.conftest import SECRET_KEY

FAST = PollingSettings(min_interval=0.2, max_interval=0.5)
WEBHOOK_SECRET = "whk-reliability-SECRET-77aa"
READ_TIMEOUT = 0.6


@dataclass(frozen=True)
class Fault:
    name: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    count: int = 1
    transient: bool = True  # a query waits it out
    not_accepted: bool = False  # Alta said it did not take the invoke: it may be retried

    def inject(self, emulator, endpoint: str) -> None:
        emulator.inject(endpoint, self.kind, count=self.count, **self.options)


FAULTS = [
    Fault("429 with Retry-After", "status", {"status": 429, "retry_after": 1}, not_accepted=True),
    Fault("429 without Retry-After", "status", {"status": 429}, not_accepted=True),
    Fault("500 burst", "status", {"status": 500}, count=3),
    Fault("502 burst", "status", {"status": 502}, count=3),
    Fault("503 burst", "status", {"status": 503}, count=3, not_accepted=True),
    Fault("504 burst", "status", {"status": 504}, count=3),
    Fault("connection reset", "drop"),
    Fault("read timeout", "delay", {"delay": READ_TIMEOUT + 0.6}),
    Fault("HTML error page", "html", {"status": 502}),
    Fault("malformed JSON", "malformed", transient=False),
    Fault("200 without required fields", "body", {"body": {"status": "RUNNING"}}, transient=False),
    Fault("200 with unknown status", "body", {"body": {"workflowRunId": "RUN", "status": "PAUSED"}}, transient=False),
]
SLOW = Fault("slow response (within the timeout)", "delay", {"delay": READ_TIMEOUT / 2})
PATHS = ["sync invoke", "async invoke", "hook polling", "trigger polling", "sensor poke"]


def _connect(monkeypatch, emulator) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTA_DEFAULT",
        emulator.connection_uri(
            SECRET_KEY, retry_backoff=0.2, retry_max_wait=20, timeout=READ_TIMEOUT, sync_invoke_timeout=READ_TIMEOUT
        ),
    )


def _start_run(emulator) -> str:
    return AltaHook().invoke_workflow({"topic": "faults"}, is_async=True).workflow_run_id


def _body(fault: Fault, run_id: str) -> Fault:
    """Point a canned 200 body at the run under test."""
    body = fault.options.get("body")
    if isinstance(body, dict) and body.get("workflowRunId") == "RUN":
        return Fault(
            fault.name,
            fault.kind,
            {**fault.options, "body": {**body, "workflowRunId": run_id}},
            fault.count,
            fault.transient,
            fault.not_accepted,
        )
    return fault


async def _run_path(path: str, fault: Fault, emulator) -> tuple[Any, BaseException | None, str | None]:
    """Run one path with ``fault`` injected; return (result, error, run id under test)."""
    run_id = None
    if path in ("sync invoke", "async invoke"):
        fault.inject(emulator, "invoke")
        is_async = path == "async invoke"
        hooks = [{"method": "POST", "url": f"{emulator.url}/_emulator/sink", "headers": {"X-Token": WEBHOOK_SECRET}}]
        try:
            run = AltaHook().invoke_workflow(
                {"topic": "faults"}, is_async=is_async, webhooks=hooks if is_async else None
            )
            return run, None, None
        except AltaError as err:
            return None, err, None
    run_id = _start_run(emulator)
    _body(fault, run_id).inject(emulator, "query")
    try:
        if path == "hook polling":
            return AltaHook().wait_for_run(run_id, polling=FAST, timeout=30), None, run_id
        if path == "sensor poke":
            sensor = AltaWorkflowRunSensor(task_id="poke", workflow_run_id=run_id, do_xcom_push=False)
            done = sensor.poke({})
            while not done:
                time.sleep(0.3)
                done = sensor.poke({})
            return done, None, run_id
        trigger = AltaWorkflowRunTrigger(run_id, polling=FAST.to_dict(), deadline=time.time() + 30)
        assert SECRET_KEY not in json.dumps(trigger.serialize())
        events = [event.payload async for event in trigger.run()]
        assert len(events) == 1
        event = events[0]
        if event["status"] == "success":
            return event, None, run_id
        return None, AltaError(event["message"], workflow_run_id=run_id), run_id
    except AltaError as err:
        return None, err, run_id


CASES = [*itertools.product(PATHS, FAULTS), *((path, SLOW) for path in PATHS)]


@pytest.mark.parametrize(("path", "fault"), CASES, ids=[f"{p}: {f.name}" for p, f in CASES])
async def test_fault(path, fault, alta_conn, alta_emulator, monkeypatch, capsys, caplog):
    _connect(monkeypatch, alta_emulator)
    invoking = path.endswith("invoke")
    # Invokes answer at once (so timeouts are the fault's alone); polled runs last long enough to poll.
    alta_emulator.configure(api_key=SECRET_KEY, duration=0.0 if invoking else 0.4, input_schema=None)
    result, error, run_id = await _run_path(path, fault, alta_emulator)
    if fault.kind == "delay":
        time.sleep(fault.options["delay"] + 0.5)  # let a request the client gave up on finish on the server

    # Outcome.
    if invoking and not fault.not_accepted and fault is not SLOW:
        assert isinstance(error, AltaInvokeOutcomeUnknownError), error
        assert "may have started" in str(error) and "POST /v1/workflow/invoke" in str(error)
    elif invoking or fault.transient:
        assert error is None, f"{fault.name} was not waited out: {error}"
        assert result is not None
    else:
        assert error is not None, f"{fault.name} was accepted"
        assert "AltaInvalidResponseError" in str(error) or isinstance(error, AltaInvalidResponseError)
        assert run_id in str(error) and "/v1/workflow/query/result" in str(error)

    # Never a second run: at most one invoke reached the handler (plus the setup run for query paths).
    assert alta_emulator.invoke_count(SECRET_KEY) <= (1 if invoking else 2)
    if invoking and (fault.not_accepted or fault.kind == "delay"):
        assert alta_emulator.invoke_count(SECRET_KEY) == 1  # retried into one run, or timed out but started once

    # No tight loop: repeated requests to the faulted endpoint are spaced out.
    endpoint = "invoke" if invoking else "query"
    times = alta_emulator.request_times(endpoint)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= 0.09 for gap in gaps), gaps
    if fault.options.get("retry_after"):
        assert max(gaps) >= fault.options["retry_after"] - 0.05

    # No leak: logs, output and the error with its traceback.
    out = capsys.readouterr()
    text = out.out + out.err + caplog.text
    if error is not None:
        text += "".join(traceback.format_exception(error)) + repr(error)
    assert SECRET_KEY not in text and WEBHOOK_SECRET not in text


@pytest.mark.usefixtures("airflow_db")
def test_operator_and_sensor_leave_no_secret_in_xcom_or_logs(alta_conn, alta_emulator, capsys):
    """A DAG run whose webhook carries a secret header: XComs, logs and tracebacks stay clean."""
    from tests.dag_runner import run_dag

    alta_emulator.configure(api_key=SECRET_KEY, duration=0.5)
    alta_emulator.inject("query", "status", status=503)
    result = run_dag("t_sensor_deferred")
    assert result.state == "success"
    values = [
        result.xcom(task, key)
        for task in ("start", "wait")
        for key in ("return_value", "workflow_run_id", "status", "total_cost", "workflow_name")
    ]
    out = capsys.readouterr()
    haystack = json.dumps(values, default=str) + out.out + out.err
    assert "whk-SECRET-41" not in haystack and SECRET_KEY not in haystack
    # The rendered fields Airflow stores (and shows in the UI) hold the mask, on every release.
    from airflow.models.renderedtifields import RenderedTaskInstanceFields

    rendered = RenderedTaskInstanceFields.get_templated_fields(result.ti("start"))
    assert rendered["webhooks"][0]["headers"] == {"X-Token": "***"}


@pytest.mark.parametrize("path", ["hook polling", "trigger polling"])
async def test_connect_refused_while_polling_is_bounded_and_typed(path, monkeypatch):
    """Nothing listens: the wait backs off a bounded number of times, then says so, with the run id."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conn = {"conn_type": "alta", "host": f"http://127.0.0.1:{port}", "password": SECRET_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", json.dumps(conn))
    polling = PollingSettings(min_interval=0.2, max_interval=0.5, max_consecutive_failures=3)
    began = time.time()
    if path == "hook polling":
        with pytest.raises(AltaError) as err:
            AltaHook().wait_for_run("run-refused", polling=polling, timeout=30)
        message = str(err.value)
    else:
        trigger = AltaWorkflowRunTrigger("run-refused", polling=polling.to_dict(), deadline=time.time() + 30)
        (event,) = [e.payload async for e in trigger.run()]
        assert event["status"] == "error"
        message = event["message"]
    assert time.time() - began >= 0.4  # two pauses of at least min_interval: no tight loop
    assert "not sent" in message and "run-refused" in message
    assert SECRET_KEY not in message
