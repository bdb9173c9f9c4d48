"""The triggerer's batched mailbox reader against the receiver served by uvicorn on 127.0.0.1, real database."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_alta._core.finish_plan import XCOM_RUN_ID
from airflow_provider_alta._webhook.contract import URL_PREFIX, TaskInstanceRef, sign
from airflow_provider_alta._webhook.mailbox_reader import active_readers, mailboxes_url, watch_mailbox
from airflow_provider_alta._webhook.read_failures import FAILURES_LOGGED
from airflow_provider_alta._webhook.receiver import create_app
from tests.plugins.mailbox_support import connections_env, fill_mailboxes, mailbox_refs
from tests.plugins.receiver_support import (
    CONN_ID,
    SECRET,
    alta_connection,
    grant_for,
    run_body,
    serve,
    set_state,
    set_xcom,
    task_try,
)


class Recorder:
    """ASGI wrapper keeping the method, path and body of every request the API server gets."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[tuple[str, str, bytes]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def recording() -> dict[str, Any]:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                self.requests.append((scope["method"], scope["path"], b"".join(chunks)))
            return dict(message)

        await self.app(scope, recording, send)

    def batches(self) -> list[list[list[Any]]]:
        """The refs of each batched read received."""
        return [json.loads(body)["refs"] for method, path, body in self.requests if path == "/alta/mailboxes"]


@pytest.fixture(scope="module")
def api_server(airflow_db) -> Iterator[tuple[str, Recorder]]:
    from fastapi import FastAPI

    app = FastAPI()
    app.mount(URL_PREFIX, create_app())
    recorder = Recorder(app)
    with serve(recorder) as url:
        yield url, recorder


@pytest.fixture(scope="module")
def refs(airflow_db) -> list[TaskInstanceRef]:
    return mailbox_refs()


@pytest.fixture
def reader_env(api_server, refs, monkeypatch) -> Recorder:
    """The Execution API's URL pointing at the served app, the connections set, the mailboxes filled."""
    url, recorder = api_server
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"{url}/execution/")
    for name, value in connections_env().items():
        monkeypatch.setenv(name, value)
    fill_mailboxes(refs)
    recorder.requests.clear()
    return recorder


def test_the_url_is_the_execution_api_base_with_the_receiver_route(monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "https://airflow.example.com/sub/execution/")
    assert mailboxes_url() == "https://airflow.example.com/sub/alta/mailboxes"
    monkeypatch.delenv("AIRFLOW__CORE__EXECUTION_API_SERVER_URL")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://10.1.2.3:9090/airflow")
    assert mailboxes_url() == "http://10.1.2.3:9090/airflow/alta/mailboxes"
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "/airflow")
    assert mailboxes_url() == "http://localhost:8080/airflow/alta/mailboxes"


async def test_waiting_triggers_share_one_batched_read_and_wake_on_their_notices(reader_env, refs):
    ends = {0: "run-a", 5: "run-f"}
    async with (
        watch_mailbox(refs[0], "run-a", 0.2) as first,
        watch_mailbox(refs[5], "run-f", 0.2) as sixth,
        watch_mailbox(refs[1], "run-b", 0.2),
        watch_mailbox(refs[4], "run-e", 0.2) as running,
    ):
        got = await asyncio.wait_for(asyncio.gather(first.next_end(), sixth.next_end()), 30)
        assert [notice["workflow_run_id"] for notice in got] == list(ends.values())
        assert [notice["status"] for notice in got] == ["SUCCEED", "FAILED"]
        assert [(conn, watches) for conn, watches, _ in active_readers()] == [(CONN_ID, 4)]
        # RUNNING announces no end: that trigger is not woken.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(running.next_end(), 1.0)
    batches = reader_env.batches()
    assert batches and all(len(refs_sent) == 4 for refs_sent in batches)  # every watch in each request
    assert [method for method, _, _ in reader_env.requests] == ["POST"] * len(reader_env.requests)
    assert active_readers() == []  # gone with its last watch


async def test_a_webhook_delivered_while_waiting_wakes_the_trigger(reader_env, refs):
    ref = refs[1]  # empty mailbox
    set_state(ref, "deferred")
    set_xcom(ref, XCOM_RUN_ID, "run-live")
    grant = grant_for(ref, task_try(ref))
    url = mailboxes_url().removesuffix("/mailboxes")

    def deliver() -> int:
        request = urllib.request.Request(
            url + grant.path(),
            data=json.dumps(run_body("run-live", "SUCCEED")).encode(),
            headers={"X-Alta-Airflow-Signature": sign(SECRET, grant)},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)

    async with watch_mailbox(ref, "run-live", 0.2) as watch:
        waiting = asyncio.ensure_future(watch.next_end())
        while not reader_env.batches():  # the reader has read the empty mailbox at least once
            await asyncio.sleep(0.05)
        assert not waiting.done()
        assert await asyncio.to_thread(deliver) == 200
        notice = await asyncio.wait_for(waiting, 30)
    assert notice["workflow_run_id"] == "run-live" and notice["status"] == "SUCCEED"


async def test_a_notice_is_handed_over_once(reader_env, refs):
    async with watch_mailbox(refs[0], "run-a", 0.1) as watch:
        await asyncio.wait_for(watch.next_end(), 30)
        seen = len(reader_env.batches())
        while len(reader_env.batches()) < seen + 3:  # three more reads answer the same notice
            await asyncio.sleep(0.05)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(watch.next_end(), 0.5)


async def test_a_cancelled_trigger_unregisters(reader_env, refs):
    async def trigger(ref: TaskInstanceRef) -> None:
        async with watch_mailbox(ref, "never-ends", 0.1) as watch:
            await watch.next_end()

    waiting = [asyncio.ensure_future(trigger(ref)) for ref in refs[:3]]
    while not reader_env.batches():
        await asyncio.sleep(0.05)
    assert [watches for _, watches, _ in active_readers()] == [3]
    waiting[0].cancel()
    await asyncio.gather(waiting[0], return_exceptions=True)
    assert [watches for _, watches, _ in active_readers()] == [2]
    for task in waiting[1:]:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    assert active_readers() == []


async def test_unreachable_api_server_is_logged_throttled_and_retried(reader_env, refs, monkeypatch, caplog):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"http://127.0.0.1:{port}/execution/")
    caplog.set_level(logging.INFO, logger="airflow_provider_alta._webhook.mailbox_reader")
    async with watch_mailbox(refs[0], "run-a", 0.05):
        while not active_readers() or active_readers()[0][2] < FAILURES_LOGGED + 5:
            await asyncio.sleep(0.05)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == FAILURES_LOGGED  # then quiet (one more a minute)
    assert all("Could not read the webhook mailboxes of 1 task(s) via alta_hooks" in w for w in warnings)
    assert all(SECRET not in r.getMessage() for r in caplog.records)


async def test_a_connection_without_secret_is_said_and_never_signs(reader_env, refs, monkeypatch, caplog):
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", alta_connection(secret=None))
    caplog.set_level(logging.WARNING, logger="airflow_provider_alta._webhook.mailbox_reader")
    async with watch_mailbox(refs[0], "run-a", 0.05):
        while not caplog.records:
            await asyncio.sleep(0.05)
    assert "connection 'alta_hooks' has no webhook_secret" in caplog.records[0].getMessage()
    assert reader_env.batches() == []  # nothing was sent unsigned


async def test_a_refused_read_names_the_status_without_the_body(reader_env, refs, api_server, monkeypatch, caplog):
    url, _ = api_server
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"{url}/elsewhere/execution/")
    caplog.set_level(logging.WARNING, logger="airflow_provider_alta._webhook.mailbox_reader")
    async with watch_mailbox(refs[0], "run-a", 0.05):
        while not caplog.records:
            await asyncio.sleep(0.05)
    message = caplog.records[0].getMessage()
    assert f"{url}/elsewhere/alta/mailboxes answered 404" in message and "Not Found" not in message
