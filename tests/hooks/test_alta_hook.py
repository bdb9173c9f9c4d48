"""AltaHook over real HTTP against the emulator."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from typing import Any

import pytest

from airflow_provider_alta._core.polling import PollingSettings
from airflow_provider_alta._core.ratelimit import reset_budgets
from airflow_provider_alta.exceptions import (
    AltaAuthError,
    AltaError,
    AltaInvalidRequestError,
    AltaInvalidResponseError,
    AltaInvokeOutcomeUnknownError,
    AltaNotFoundError,
    AltaRateLimitError,
    AltaServerError,
    AltaTimeoutError,
    AltaTransportError,
    AltaValidationError,
)
from airflow_provider_alta.hooks.alta import AltaAsyncHook, AltaHook
from airflow_provider_alta.models import RunStatus
from airflow_provider_alta.testing.emulator import EmulatorThread
from tests.conftest import SECRET_KEY
from tests.dag_runner import log_lines

FAST = PollingSettings(min_interval=0.2, max_interval=0.5, jitter=0.0)


def no_retry_conn(monkeypatch, emulator, **extras):
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", emulator.connection_uri(SECRET_KEY, max_retries=0, **extras))


def test_sync_invoke_returns_finished_run(alta_conn, alta_emulator):
    alta_emulator.configure(duration=0.3)
    run = AltaHook().invoke_workflow({"topic": "News"}, user_id="analyst-1")
    assert run.status is RunStatus.SUCCEED
    assert run.workflow_name == "todayNews"
    assert run.output == alta_emulator.run(run.workflow_run_id)["body"]["output"]
    assert run.output["news"][0]["title"].startswith("News:")
    assert run.total_cost == pytest.approx(0.6928)
    assert run.total_tokens == 1745
    assert alta_emulator.invoke_count() == 1


def test_async_invoke_then_get_run_until_done(alta_conn, alta_emulator):
    alta_emulator.configure(duration=0.6)
    hook = AltaHook()
    started = hook.invoke_workflow({"topic": "AI"}, is_async=True)
    assert started.status is RunStatus.PENDING
    assert started.output is None
    seen = set()
    deadline = time.time() + 10
    while time.time() < deadline:
        run = hook.get_run(started.workflow_run_id)
        seen.add(run.status)
        if run.is_terminal:
            break
        time.sleep(0.1)
    assert run.status is RunStatus.SUCCEED
    assert RunStatus.RUNNING in seen
    assert run.output["news"][1]["summary"] == "Three developments in AI that may matter this week."


def test_wait_for_run_reports_each_status_change_once(alta_conn, alta_emulator):
    alta_emulator.configure(duration=1.0)
    hook = AltaHook()
    started = hook.invoke_workflow({"topic": "AI"}, is_async=True)
    changes = []
    run = hook.wait_for_run(
        started.workflow_run_id, polling=FAST, on_status=lambda r, elapsed: changes.append(r.status)
    )
    assert run.status is RunStatus.SUCCEED
    assert changes[-1] is RunStatus.SUCCEED
    assert len(changes) == len(set(changes))
    assert alta_emulator.request_count("query") >= 2


def test_wait_for_run_tells_a_failure_streak_and_its_end(alta_conn, alta_emulator, capsys, caplog):
    """The worker's wait (an operator that does not defer) logs an outage as the trigger does."""
    caplog.set_level(logging.INFO)
    alta_emulator.configure(duration=0.3)
    hook = AltaHook()
    started = hook.invoke_workflow({"topic": "AI"}, is_async=True)
    alta_emulator.inject("query", "status", status=503, count=3)
    assert hook.wait_for_run(started.workflow_run_id, polling=FAST).status is RunStatus.SUCCEED
    lines = log_lines(capsys, caplog, AltaHook.__name__)
    url = f"{alta_emulator.url}/v1/workflow/query/result"
    warnings = [line for line in lines if line.startswith("[warning")]
    assert len(warnings) == 1 and f"Alta query to {url} failed with AltaServerError" in warnings[0], lines
    assert "next attempt in" in warnings[0] and "HTTP 503" in warnings[0]
    assert [line for line in lines if "answers again, after 3 failed queries" in line], lines
    assert SECRET_KEY not in "\n".join(lines) + caplog.text


def test_failed_run_is_returned_with_its_detail(alta_conn, alta_emulator):
    alta_emulator.configure(duration=0.2, outcome="fail")
    run = AltaHook().invoke_workflow({"topic": "News"})
    assert run.status is RunStatus.FAILED
    assert "Summarise" in run.error_detail


def test_wait_for_run_timeout_names_run(alta_conn, alta_emulator):
    alta_emulator.configure(duration=30)
    hook = AltaHook()
    started = hook.invoke_workflow({"topic": "AI"}, is_async=True)
    with pytest.raises(AltaTimeoutError) as err:
        hook.wait_for_run(started.workflow_run_id, timeout=0.8, polling=FAST)
    assert started.workflow_run_id in str(err.value)
    assert "may still be running" in str(err.value)


@pytest.mark.parametrize(
    ("status", "error_type", "code"),
    [
        (400, AltaInvalidRequestError, "INVALID_REQUEST"),
        (401, AltaAuthError, "UNAUTHORIZED"),
        (403, AltaAuthError, "FORBIDDEN"),
        (404, AltaNotFoundError, "RUN_NOT_FOUND"),
        (413, AltaInvalidRequestError, "PAYLOAD_TOO_LARGE"),
        (422, AltaInvalidRequestError, None),
        (429, AltaRateLimitError, "RATE_LIMITED"),
        (500, AltaServerError, "INTERNAL_ERROR"),
        (503, AltaServerError, "SERVICE_UNAVAILABLE"),
    ],
)
def test_error_status_becomes_typed_error(monkeypatch, alta_conn, alta_emulator, status, error_type, code):
    no_retry_conn(monkeypatch, alta_emulator)
    alta_emulator.inject("query", "status", status=status)
    with pytest.raises(error_type) as err:
        AltaHook().get_run("run-123")
    text = str(err.value)
    assert f"HTTP {status}" in text
    assert "POST /v1/workflow/query/result" in text
    assert "workflow_run_id=run-123" in text
    if code:
        assert f"code={code}" in text
    assert err.value.status == status


def test_html_error_page_gives_readable_message(monkeypatch, alta_conn, alta_emulator):
    no_retry_conn(monkeypatch, alta_emulator)
    alta_emulator.inject("query", "html", status=502)
    with pytest.raises(AltaServerError) as err:
        AltaHook().get_run("run-9")
    assert "502 Bad Gateway" in str(err.value)
    assert "<" not in err.value.api_message


def test_malformed_json_is_invalid_response(monkeypatch, alta_conn, alta_emulator):
    no_retry_conn(monkeypatch, alta_emulator)
    alta_emulator.inject("query", "malformed")
    with pytest.raises(AltaInvalidResponseError, match="not JSON"):
        AltaHook().get_run("run-9")


def test_unknown_status_is_explicit_error(monkeypatch, alta_conn, alta_emulator):
    alta_emulator.inject("query", "body", body={"workflowRunId": "run-9", "status": "PAUSED"})
    with pytest.raises(AltaInvalidResponseError, match="unknown run status 'PAUSED'"):
        AltaHook().get_run("run-9")


def test_real_unknown_run_is_not_found(alta_conn, alta_emulator):
    with pytest.raises(AltaNotFoundError) as err:
        AltaHook().get_run("no-such-run")
    assert err.value.code == "RUN_NOT_FOUND"
    assert alta_emulator.request_count("query") == 1  # not retried


def test_get_run_waits_out_429_with_retry_after(alta_conn, alta_emulator):
    started = AltaHook().invoke_workflow({"topic": "AI"}, is_async=True)
    alta_emulator.inject("query", "status", status=429, retry_after=1)
    run = AltaHook().get_run(started.workflow_run_id)
    assert run.workflow_run_id == started.workflow_run_id
    times = alta_emulator.request_times("query")
    assert len(times) == 2
    assert times[1] - times[0] >= 0.95


def test_get_run_retries_5xx_burst(alta_conn, alta_emulator):
    started = AltaHook().invoke_workflow({"topic": "AI"}, is_async=True)
    alta_emulator.inject("query", "status", status=502, count=2)
    alta_emulator.inject("query", "drop", count=1)
    run = AltaHook().get_run(started.workflow_run_id)
    assert run.workflow_run_id == started.workflow_run_id
    assert alta_emulator.request_count("query") == 4


@pytest.mark.parametrize("status", [500, 502, 504])
def test_invoke_not_retried_on_ambiguous_5xx(alta_conn, alta_emulator, status):
    alta_emulator.inject("invoke", "status", status=status)
    with pytest.raises(AltaInvokeOutcomeUnknownError) as err:
        AltaHook().invoke_workflow({"topic": "News"})
    assert alta_emulator.request_count("invoke") == 1
    assert "may have started" in str(err.value)
    assert "dashboard" in str(err.value)


def test_invoke_not_retried_on_read_timeout(monkeypatch, alta_conn, alta_emulator):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTA_DEFAULT", alta_emulator.connection_uri(SECRET_KEY, timeout=0.5, retry_backoff=0.1)
    )
    alta_emulator.inject("invoke", "delay", delay=1.5)
    with pytest.raises(AltaInvokeOutcomeUnknownError, match="read timeout"):
        AltaHook().invoke_workflow({"topic": "News"}, is_async=True)
    time.sleep(1.5)
    assert alta_emulator.request_count("invoke") == 1
    assert alta_emulator.invoke_count() == 1  # the run did start: retrying would have paid twice


def test_invoke_not_retried_when_connection_drops_after_processing(alta_conn, alta_emulator):
    alta_emulator.inject("invoke", "drop_after")
    with pytest.raises(AltaInvokeOutcomeUnknownError):
        AltaHook().invoke_workflow({"topic": "News"}, is_async=True)
    assert alta_emulator.invoke_count() == 1


@pytest.mark.parametrize("status", [429, 503])
def test_invoke_retried_when_not_accepted(alta_conn, alta_emulator, status):
    alta_emulator.inject("invoke", "status", status=status, retry_after=0)
    run = AltaHook().invoke_workflow({"topic": "News"}, is_async=True)
    assert run.status is RunStatus.PENDING
    assert alta_emulator.request_count("invoke") == 2
    assert alta_emulator.invoke_count() == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_invoke_retried_on_refused_connection(monkeypatch):
    """Nothing listens at first; the emulator comes up during the backoff."""
    from airflow_provider_alta.testing.client import EmulatorClient

    reset_budgets()
    port = _free_port()
    late = EmulatorThread(port=port)
    timer = threading.Timer(1.0, late.start)
    timer.start()
    try:
        client = EmulatorClient(f"http://127.0.0.1:{port}")
        monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", client.connection_uri(retry_backoff=0.5, max_retries=6))
        run = AltaHook().invoke_workflow({"topic": "News"}, is_async=True)
        assert run.status is RunStatus.PENDING
        assert client.invoke_count() == 1
    finally:
        timer.join()
        late.stop()


def test_refused_connection_is_typed_and_not_sent(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTA_DEFAULT",
        json.dumps(
            {
                "conn_type": "alta",
                "host": f"http://127.0.0.1:{_free_port()}",
                "password": SECRET_KEY,
                "extra": {"max_retries": 0},
            }
        ),
    )
    with pytest.raises(AltaTransportError) as err:
        AltaHook().invoke_workflow({"topic": "News"})
    assert err.value.sent is False
    assert "not sent" in str(err.value)


BAD_CALLS = [
    ({"input": ["topic"]}, "input must be a JSON object"),
    ({"input": "topic=News"}, "input must be a JSON object"),
    ({"input": {"when": object()}}, "not JSON-serialisable"),
    ({"input": {"x": float("nan")}}, "not JSON-serialisable"),
    ({"input": {1: "x"}}, "non-string key"),
    ({"input": {"topic": "a"}, "user_id": 7}, "user_id"),
    ({"input": {"topic": "a"}, "user_id": ""}, "user_id"),
    ({"input": {"topic": "a"}, "is_async": "yes"}, "is_async"),
    (
        {"input": {"topic": "a"}, "webhooks": [{"method": "POST", "url": "https://x.io"}]},
        "only delivered for asynchronous",
    ),
    (
        {"input": {"topic": "a"}, "is_async": True, "webhooks": [{"method": "POST", "url": "https://x.io"}] * 6},
        "at most 5",
    ),
    ({"input": {"topic": "a"}, "is_async": True, "webhooks": [{"method": "FETCH", "url": "https://x.io"}]}, "method"),
    ({"input": {"topic": "a"}, "is_async": True, "webhooks": [{"method": "POST", "url": "/hook"}]}, "absolute"),
    ({"input": {"topic": "a"}, "is_async": True, "webhooks": [{"method": "POST", "url": "ftp://x.io/a"}]}, "absolute"),
    (
        {
            "input": {"topic": "a"},
            "is_async": True,
            "webhooks": [{"method": "POST", "url": "https://x.io", "headers": {"X-N": 5}}],
        },
        "string value",
    ),
    ({"input": {"topic": "a"}, "is_async": True, "webhooks": [{"url": "https://x.io"}]}, "method"),
    ({"input": {"topic": "a"}, "is_async": True, "webhooks": {"method": "POST"}}, "list"),
    (
        {
            "input": {"topic": "a"},
            "is_async": True,
            "webhooks": [{"method": "POST", "url": "https://x.io", "secret": "s"}],
        },
        "unknown keys",
    ),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_CALLS)
def test_invalid_invoke_arguments_rejected_before_any_request(alta_conn, alta_emulator, kwargs, message):
    kwargs = dict(kwargs)
    with pytest.raises(AltaValidationError, match=message):
        AltaHook().invoke_workflow(kwargs.pop("input"), **kwargs)
    assert alta_emulator.request_count() == 0


@pytest.mark.parametrize("run_id", ["", "   ", None, 42])
def test_invalid_run_id_rejected_before_any_request(alta_conn, alta_emulator, run_id):
    with pytest.raises(AltaValidationError, match="workflow_run_id"):
        AltaHook().get_run(run_id)
    assert alta_emulator.request_count() == 0


def test_webhook_method_is_case_insensitive(alta_conn, alta_emulator):
    run = AltaHook().invoke_workflow(
        {"topic": "a"}, is_async=True, webhooks=[{"method": "post", "url": "http://127.0.0.1:9/hook"}]
    )
    assert run.status is RunStatus.PENDING


def test_invalid_input_against_start_node_is_api_error(alta_conn, alta_emulator):
    with pytest.raises(AltaInvalidRequestError) as err:
        AltaHook().invoke_workflow({"subject": "News"})
    assert err.value.code == "INVALID_INPUT"
    assert "topic" in str(err.value)


def test_rate_limit_figures_remembered_per_key(alta_conn, alta_emulator):
    alta_emulator.configure(rate_limit=50, rate_window=60, duration=0.1)
    hook = AltaHook()
    hook.invoke_workflow({"topic": "a"}, is_async=True)
    snapshot = hook.budget.snapshot()
    assert snapshot.limit == 50
    assert snapshot.remaining == 49
    assert snapshot.reset_at > time.time()
    assert AltaHook().budget is hook.budget  # one budget per key per process


def test_session_reused_across_calls(alta_conn, alta_emulator):
    hook = AltaHook()
    run = hook.invoke_workflow({"topic": "a"}, is_async=True)
    before = alta_emulator.stats()["connections"]
    for _ in range(5):
        hook.get_run(run.workflow_run_id)
    # Five queries on the hook's kept-alive connection; the one extra is the stats call itself.
    assert alta_emulator.stats()["connections"] - before <= 1


def test_test_connection(alta_conn, alta_emulator, monkeypatch):
    ok, message = AltaHook().test_connection()
    assert ok, message
    assert alta_emulator.invoke_count() == 0
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", alta_emulator.connection_uri("wrong-key"))
    ok, message = AltaHook().test_connection()
    assert not ok
    assert message.count("rejected the API key") == 1, message
    assert alta_emulator.url in message
    assert "workflow_run_id" not in message and "connection-test" not in message  # the probe's id is made up
    assert "wrong-key" not in message


def test_missing_key_is_clear_error(monkeypatch, alta_emulator):
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", json.dumps({"conn_type": "alta", "host": alta_emulator.url}))
    with pytest.raises(AltaValidationError, match="no API key"):
        AltaHook().get_run("r")
    assert alta_emulator.request_count() == 0


def test_api_key_never_in_logs_or_errors(monkeypatch, alta_conn, alta_emulator, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    hook = AltaHook()
    alta_emulator.inject("query", "status", status=503, count=2)
    alta_emulator.inject("invoke", "status", status=500)
    for call in (
        lambda: hook.get_run("nope"),
        lambda: hook.invoke_workflow({"topic": "x"}),
        lambda: hook.invoke_workflow({"bad": "x"}),
        lambda: hook.invoke_workflow({"topic": object()}),
    ):
        try:
            call()
        except AltaError as exc:
            errors.append(exc)
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", alta_emulator.connection_uri(SECRET_KEY + "x", max_retries=0))
    try:
        AltaHook().get_run("nope")
    except AltaError as exc:
        errors.append(exc)
    assert len(errors) == 5
    import traceback

    texts = [str(e) + "".join(traceback.format_exception(e)) + repr(e) for e in errors]
    out = capsys.readouterr()
    haystack = "\n".join([*texts, caplog.text, out.out, out.err, repr(hook.config)])
    assert "retrying" in haystack  # the retries were logged...
    assert SECRET_KEY not in haystack  # ...and never with the key


def _locals_holding(traceback: Any, secret: str) -> list[str]:
    """``function: name`` for every local of every frame of ``traceback`` whose ``repr`` shows ``secret``."""
    found = []
    while traceback is not None:
        frame = traceback.tb_frame
        found += [f"{frame.f_code.co_name}: {name}" for name, value in frame.f_locals.items() if secret in repr(value)]
        traceback = traceback.tb_next
    return found


@pytest.mark.parametrize("status", [401, 429, 500])
def test_no_frame_of_an_error_holds_the_key_in_a_local(monkeypatch, alta_conn, alta_emulator, status):
    """A task log that shows each frame's locals (Airflow 3.0's does, on a failed task) shows no key."""
    no_retry_conn(monkeypatch, alta_emulator)
    alta_emulator.inject("query", "status", status=status)
    with pytest.raises(AltaError) as sync_err:
        AltaHook().get_run("run-123")
    alta_emulator.inject("query", "status", status=status)

    async def query() -> None:
        async with AltaAsyncHook() as hook:
            await hook.get_run("run-123")

    with pytest.raises(AltaError) as async_err:
        asyncio.run(query())
    assert _locals_holding(sync_err.tb, SECRET_KEY) == []
    assert _locals_holding(async_err.tb, SECRET_KEY) == []
