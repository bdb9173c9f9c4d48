"""The two HTTP clients of ``_transport`` against the emulator: the same reply from both, typed failures, the shared
aiohttp session, and the drivers of the core's retry and wait decisions."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from functools import partial

import pytest

from airflow_provider_alta._core.connection import AltaConnectionConfig
from airflow_provider_alta._core.polling import PollingSettings
from airflow_provider_alta._core.protocol import QUERY_PATH, ApiRequest, invoke_request, join_url, query_request
from airflow_provider_alta._core.ratelimit import RateBudget
from airflow_provider_alta._core.request_retry import RetrySettings
from airflow_provider_alta._core.waiting import RunWaiter
from airflow_provider_alta._transport import aio, sync
from airflow_provider_alta._transport.reply import read_answer
from airflow_provider_alta.exceptions import AltaInvokeOutcomeUnknownError, AltaTransportError
from airflow_provider_alta.models import RunStatus, WorkflowRun
from airflow_provider_alta.testing.workflows import DEFAULT_API_KEY

RETRY = RetrySettings(max_attempts=4, max_wait=10.0, backoff_initial=0.05, backoff_max=0.1)


@pytest.fixture
def config(alta_emulator) -> AltaConnectionConfig:
    alta_emulator.configure(duration=0.3)
    return AltaConnectionConfig(base_url=alta_emulator.url, api_key=DEFAULT_API_KEY, retry=RETRY, read_timeout=5.0)


@pytest.fixture
def session() -> Iterator[object]:
    with sync.new_session() as opened:
        yield opened


def start_run(session, config: AltaConnectionConfig) -> str:
    request = invoke_request({"input": {"topic": "wire"}, "isAsync": True})
    return str(json.loads(sync.exchange(session, request, config, 5.0).text)["workflowRunId"])


async def aio_exchange(request: ApiRequest, config: AltaConnectionConfig):
    session = aio.session_pool.acquire(config)
    try:
        return await aio.exchange(session, request, config, config.read_timeout)
    finally:
        await aio.session_pool.release(config)


def test_both_clients_hand_back_the_same_reply(alta_emulator, config, session):
    run_id = start_run(session, config)
    request = query_request(run_id)
    by_requests = sync.exchange(session, request, config, 5.0)
    by_aiohttp = asyncio.run(aio_exchange(request, config))
    for reply in (by_requests, by_aiohttp):
        assert reply.status == 200
        assert json.loads(reply.text)["workflowRunId"] == run_id
        assert reply.headers["Content-Type"].startswith("application/json")
    assert alta_emulator.request_count("query") == 2


def test_an_error_answer_is_a_reply_not_an_exception(config, session):
    """Reading the answer is the core's job: the wire hands a 404 back as it came."""
    unknown = query_request("no-such-run")
    for reply in (sync.exchange(session, unknown, config, 5.0), asyncio.run(aio_exchange(unknown, config))):
        assert reply.status == 404 and json.loads(reply.text)["error"]["code"] == "RUN_NOT_FOUND"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("client", ["requests", "aiohttp"])
def test_a_refused_connection_is_not_sent_and_a_drop_after_sending_is(alta_emulator, config, session, client):
    def send(config: AltaConnectionConfig) -> None:
        request = invoke_request({"input": {"topic": "wire"}})
        if client == "requests":
            sync.exchange(session, request, config, 5.0)
        else:
            asyncio.run(aio_exchange(request, config))

    nobody = AltaConnectionConfig(base_url=f"http://127.0.0.1:{_free_port()}", api_key=DEFAULT_API_KEY)
    with pytest.raises(AltaTransportError) as refused:
        send(nobody)
    assert refused.value.sent is False and "connection refused" in str(refused.value)
    alta_emulator.inject("invoke", "drop_after")
    with pytest.raises(AltaTransportError) as dropped:
        send(config)
    assert dropped.value.sent is True and "failed mid-request" in str(dropped.value)
    assert alta_emulator.invoke_count() == 1  # the dropped request did start a run
    assert DEFAULT_API_KEY not in str(refused.value) + str(dropped.value)


async def test_the_pool_shares_one_session_per_loop_and_settings(config):
    other = AltaConnectionConfig(base_url=config.base_url, api_key="another-key", verify=False)
    first, second = aio.session_pool.acquire(config), aio.session_pool.acquire(config)
    unverified = aio.session_pool.acquire(other)
    assert first is second and unverified is not first
    assert aio.session_pool.open_sessions() == 2
    await aio.session_pool.release(config)
    assert not first.closed  # one user left
    await aio.session_pool.release(config)
    await aio.session_pool.release(other)
    assert first.closed and unverified.closed
    assert aio.session_pool.open_sessions() == 0


def sender(session, request: ApiRequest, config: AltaConnectionConfig, budget: RateBudget):
    return lambda: read_answer(request, sync.exchange(session, request, config, 5.0), budget, config)


def aio_sender(request: ApiRequest, config: AltaConnectionConfig, budget: RateBudget):
    async def send() -> WorkflowRun:
        return read_answer(request, await aio_exchange(request, config), budget, config)

    return send


def test_call_repeats_a_query_but_not_an_invoke_that_may_have_started(alta_emulator, config, session):
    budget, retries = RateBudget(), []
    run_id = start_run(session, config)
    alta_emulator.inject("query", "status", status=502, count=2)
    query = query_request(run_id)
    run = sync.call(sender(session, query, config, budget), query, RETRY, budget, retries.append)
    assert run.workflow_run_id == run_id
    assert alta_emulator.request_count("query") == 3 and len(retries) == 2
    alta_emulator.inject("invoke", "status", status=502)
    invoke = invoke_request({"input": {"topic": "wire"}})
    with pytest.raises(AltaInvokeOutcomeUnknownError) as err:
        sync.call(sender(session, invoke, config, budget), invoke, RETRY, budget, retries.append)
    assert err.value.status == 502 and "may have started" in str(err.value)
    assert alta_emulator.request_count("invoke") == 2 and len(retries) == 2  # start_run's, and the 502 not repeated


def test_call_waits_for_the_keys_budget_before_sending(alta_emulator, config, session):
    """A ``Retry-After`` another request met holds this one too: nothing is sent into a known 429."""
    budget = RateBudget()
    run_id = start_run(session, config)
    budget.block(0.5)
    blocked_at = time.time()
    query = query_request(run_id)
    sync.call(sender(session, query, config, budget), query, RETRY, budget, pytest.fail)
    assert alta_emulator.request_times("query")[0] >= blocked_at + 0.45


async def test_the_async_call_applies_the_same_policy(alta_emulator, config):
    budget, retries = RateBudget(), []
    alta_emulator.inject("invoke", "status", status=503, retry_after=0)
    invoke = invoke_request({"input": {"topic": "wire"}, "isAsync": True})
    started = await aio.call(aio_sender(invoke, config, budget), invoke, RETRY, budget, retries.append)
    assert started.status is RunStatus.PENDING and len(retries) == 1
    assert alta_emulator.request_count("invoke") == 2 and alta_emulator.invoke_count() == 1
    alta_emulator.inject("invoke", "status", status=500)
    with pytest.raises(AltaInvokeOutcomeUnknownError):
        await aio.call(aio_sender(invoke, config, budget), invoke, RETRY, budget, retries.append)
    assert alta_emulator.request_count("invoke") == 3 and len(retries) == 1


def waiter_for(run_id: str, config: AltaConnectionConfig, budget: RateBudget) -> RunWaiter:
    polling = PollingSettings(min_interval=0.05, max_interval=0.2, jitter=0.0)
    url = join_url(config.base_url, QUERY_PATH)
    return RunWaiter.for_query(
        run_id, url=url, now=time.time(), budget=budget, retry=RETRY, polling=polling, timeout=20
    )


def test_both_drivers_wait_a_run_out_through_a_failure(alta_emulator, config, session):
    budget = RateBudget()
    ends = []
    for drive in ("sync", "aio"):
        run_id = start_run(session, config)
        alta_emulator.inject("query", "status", status=503)
        query = query_request(run_id)
        with waiter_for(run_id, config, budget) as waiter:
            if drive == "sync":
                ended = sync.drive(waiter, None, sender(session, query, config, budget))
            else:
                ended = asyncio.run(aio.drive(waiter, None, aio_sender(query, config, budget)))
            assert budget.snapshot().pollers == 1
        ends.append(ended.status)
        assert alta_emulator.run(run_id)["queries"] >= 1  # answered queries after the failed one
    assert ends == [RunStatus.SUCCEED, RunStatus.SUCCEED]
    assert alta_emulator.request_count("query") >= 4
    assert budget.snapshot().pollers == 0


def test_a_driver_returns_a_known_ended_run_without_sending(alta_emulator, config, session):
    ended = WorkflowRun.from_response({"workflowRunId": "r-1", "status": "SUCCEED"})
    waiter = waiter_for("r-1", config, RateBudget())
    assert sync.drive(waiter, ended, partial(pytest.fail, "sent")) is ended
    assert asyncio.run(aio.drive(waiter, ended, partial(pytest.fail, "sent"))) is ended
    assert alta_emulator.request_count() == 0
