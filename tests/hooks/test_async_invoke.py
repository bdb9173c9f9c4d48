"""AltaAsyncHook.invoke_workflow over real HTTP against the emulator: the sync invoke's retry policy, awaited.

A batch runs many runs from one worker with asyncio; an invoke is still never repeated when it may have started a
paid run, and only ever by code that runs once (a trigger may run twice, so no trigger calls it).
"""

from __future__ import annotations

import ast
import asyncio
import json
import socket
import threading
import time
from pathlib import Path

import pytest

import airflow_provider_alta
from airflow_provider_alta._core.ratelimit import reset_budgets
from airflow_provider_alta.exceptions import (
    AltaAuthError,
    AltaInvalidRequestError,
    AltaInvokeOutcomeUnknownError,
    AltaRateLimitError,
    AltaTransportError,
    AltaValidationError,
)
from airflow_provider_alta.hooks.alta import AltaAsyncHook
from airflow_provider_alta.models import RunStatus
from airflow_provider_alta.testing.emulator import EmulatorThread
from tests.conftest import SECRET_KEY

FAST_POLLS = {"min_interval": 0.1, "max_interval": 0.3, "jitter": 0.0}


async def invoke(*args, **kwargs):
    async with AltaAsyncHook() as hook:
        return await hook.invoke_workflow(*args, **kwargs)


async def test_sync_invoke_returns_the_finished_run(alta_conn, alta_emulator):
    alta_emulator.configure(duration=0.3)
    run = await invoke({"topic": "News"}, user_id="analyst-1")
    assert run.status is RunStatus.SUCCEED
    assert run.output == alta_emulator.run(run.workflow_run_id)["body"]["output"]
    assert run.total_tokens == 1745
    assert alta_emulator.invoke_count() == 1


async def test_a_blocking_invoke_waits_up_to_sync_invoke_timeout_not_the_read_timeout(
    monkeypatch, alta_conn, alta_emulator
):
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", alta_emulator.connection_uri(SECRET_KEY, timeout=0.3))
    alta_emulator.configure(duration=0.8)
    run = await invoke({"topic": "News"})
    assert run.status is RunStatus.SUCCEED
    assert alta_emulator.request_count("invoke") == 1


async def test_many_async_invokes_from_one_loop_then_their_waits(alta_conn, alta_emulator):
    """What a batch does: start runs concurrently on one session, then wait for them all."""
    from airflow_provider_alta._core.polling import PollingSettings

    alta_emulator.configure(duration=0.4)
    async with AltaAsyncHook() as hook:
        started = await asyncio.gather(*(hook.invoke_workflow({"topic": f"t{i}"}, is_async=True) for i in range(5)))
        assert {run.status for run in started} == {RunStatus.PENDING}
        polling = PollingSettings(**FAST_POLLS)
        ended = await asyncio.gather(*(hook.wait_for_run(r.workflow_run_id, polling=polling) for r in started))
    assert [run.status for run in ended] == [RunStatus.SUCCEED] * 5
    assert len({run.workflow_run_id for run in ended}) == 5
    assert alta_emulator.invoke_count() == 5
    assert hook.queries_sent == alta_emulator.request_count("query")  # invokes are not counted as queries


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_not_retried_on_an_ambiguous_5xx(alta_conn, alta_emulator, status):
    alta_emulator.inject("invoke", "status", status=status)
    with pytest.raises(AltaInvokeOutcomeUnknownError) as err:
        await invoke({"topic": "News"})
    assert alta_emulator.request_count("invoke") == 1
    assert "may have started" in str(err.value) and "dashboard" in str(err.value)


async def test_not_retried_on_a_read_timeout(monkeypatch, alta_conn, alta_emulator):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTA_DEFAULT", alta_emulator.connection_uri(SECRET_KEY, timeout=0.5, retry_backoff=0.1)
    )
    alta_emulator.inject("invoke", "delay", delay=1.5)
    with pytest.raises(AltaInvokeOutcomeUnknownError, match="read timeout"):
        await invoke({"topic": "News"}, is_async=True)
    assert alta_emulator.request_count("invoke") == 1
    deadline = time.time() + 10
    while alta_emulator.invoke_count() == 0:  # the run starts once the delayed request is handled
        assert time.time() < deadline, "the delayed invoke never reached the handler"
        await asyncio.sleep(0.05)
    assert alta_emulator.request_count("invoke") == 1  # one paid run: a retry would have started a second


async def test_not_retried_when_the_connection_drops_after_processing(alta_conn, alta_emulator):
    alta_emulator.inject("invoke", "drop_after")
    with pytest.raises(AltaInvokeOutcomeUnknownError):
        await invoke({"topic": "News"}, is_async=True)
    assert alta_emulator.invoke_count() == 1
    assert alta_emulator.request_count("invoke") == 1


@pytest.mark.parametrize("status", [429, 503])
async def test_retried_when_not_accepted(alta_conn, alta_emulator, status):
    alta_emulator.inject("invoke", "status", status=status, retry_after=0)
    run = await invoke({"topic": "News"}, is_async=True)
    assert run.status is RunStatus.PENDING
    assert alta_emulator.request_count("invoke") == 2
    assert alta_emulator.invoke_count() == 1


async def test_a_retry_after_holds_the_next_attempt(alta_conn, alta_emulator):
    alta_emulator.inject("invoke", "status", status=429, retry_after=1)
    run = await invoke({"topic": "News"}, is_async=True)
    assert run.status is RunStatus.PENDING
    times = alta_emulator.request_times("invoke")
    assert len(times) == 2 and times[1] - times[0] >= 0.95


async def test_a_rejected_key_or_input_is_not_retried_and_never_shows_the_key(alta_conn, alta_emulator, monkeypatch):
    with pytest.raises(AltaInvalidRequestError) as bad_input:
        await invoke({"subject": "News"})
    assert bad_input.value.code == "INVALID_INPUT"
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", alta_emulator.connection_uri(SECRET_KEY + "x"))
    with pytest.raises(AltaAuthError) as bad_key:
        await invoke({"topic": "News"})
    assert alta_emulator.request_count("invoke") == 2
    assert SECRET_KEY not in repr(bad_key.value) + str(bad_key.value) + str(bad_input.value)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_retried_on_a_refused_connection(monkeypatch):
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
        run = await invoke({"topic": "News"}, is_async=True)
        assert run.status is RunStatus.PENDING
        assert client.invoke_count() == 1
    finally:
        timer.join()
        late.stop()


async def test_a_refused_connection_is_typed_and_not_sent(monkeypatch):
    reset_budgets()
    conn = {"conn_type": "alta", "host": f"http://127.0.0.1:{_free_port()}", "password": SECRET_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", json.dumps({**conn, "extra": {"max_retries": 0}}))
    with pytest.raises(AltaTransportError) as err:
        await invoke({"topic": "News"})
    assert err.value.sent is False and "not sent" in str(err.value)


async def test_one_attempt_without_retry_raises_the_concurrency_429_it_met(alta_conn, alta_emulator):
    # A batch's plan decides every retry itself: it must see the 429 that says Alta's concurrency limit is reached.
    alta_emulator.configure(duration=30.0, concurrency_limit=1)
    async with AltaAsyncHook() as hook:
        first = await hook.invoke_workflow({"topic": "A"}, is_async=True, retry=False)
        with pytest.raises(AltaRateLimitError) as err:
            await hook.invoke_workflow({"topic": "B"}, is_async=True, retry=False)
        run = await hook.get_run(first.workflow_run_id, retry=False)
    assert err.value.code == "CONCURRENCY_LIMIT_EXCEEDED"
    assert run.status in (RunStatus.PENDING, RunStatus.RUNNING)
    stats = alta_emulator.key_stats()
    assert (stats["invokes"], stats["concurrency_refused"], stats["runs"], stats["queries"]) == (1, 1, 1, 1)
    assert alta_emulator.request_count("invoke") == 2  # one attempt each: the refused one was not sent again


async def test_a_hook_built_from_a_config_already_read_does_not_read_the_connection(
    monkeypatch, alta_conn, alta_emulator
):
    from airflow_provider_alta.hooks.alta import AltaHook

    reader = AltaHook()
    config = reader.config
    monkeypatch.delenv("AIRFLOW_CONN_ALTA_DEFAULT")  # a second read would fail: the connection is gone
    async with AltaAsyncHook(config=config) as hook:
        assert hook.budget is reader.budget  # the key's one budget in this process
        run = await hook.invoke_workflow({"topic": "News"}, is_async=True, retry=False)
    assert alta_emulator.run(run.workflow_run_id)["body"]["input"] == {"topic": "News"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input": ["topic"]}, "input must be a JSON object"),
        ({"input": {"topic": "a"}, "user_id": ""}, "user_id"),
        ({"input": {"topic": "a"}, "webhooks": [{"method": "POST", "url": "https://x.io"}]}, "only delivered for"),
    ],
)
async def test_invalid_arguments_are_rejected_before_any_request(alta_conn, alta_emulator, kwargs, message):
    kwargs = dict(kwargs)
    with pytest.raises(AltaValidationError, match=message):
        await invoke(kwargs.pop("input"), **kwargs)
    assert alta_emulator.request_count() == 0


def test_no_trigger_invokes():
    """A trigger may run twice and is rebuilt after a triggerer restart: an invoke there could pay twice."""
    triggers = Path(airflow_provider_alta.__file__).parent / "triggers"
    calls = [
        f"{path.name}:{node.lineno}"
        for path in sorted(triggers.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr == "invoke_workflow"
    ]
    assert len(list(triggers.rglob("*.py"))) >= 2
    assert calls == []
