"""Hostile requests replayed against the receiver: the app in-process (and served by uvicorn where the wire
matters), against the real metadata database. What each must answer, and that nothing is stored."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from airflow_provider_alta._core.finish_plan import XCOM_RUN_ID
from airflow_provider_alta._webhook.contract import MAILBOX_KEY, MAX_BODY_BYTES, SIGNATURE_HEADER, WebhookGrant, sign
from airflow_provider_alta._webhook.mailbox_store import MailboxStore
from airflow_provider_alta._webhook.receiver import create_app
from airflow_provider_alta._webhook.secret_cache import LOOKUPS_PER_SECOND, SecretCache
from tests.plugins.receiver_support import (
    CONN_ID,
    RUN_ID,
    SECRET,
    alta_connection,
    other,
    post,
    run_body,
    serve,
    set_state,
    set_xcom,
    untouched,
    xcom,
)

#: What a forged log line needs: line breaks of every kind, and terminal escapes.
LOG_BREAKERS = ("\r", "\n", "\x0b", "\x0c", "\x85", "\u2028", "\u2029", "\x1b")


@pytest.fixture
def lookups(monkeypatch) -> list[str]:
    """Every connection id the receiver looks up, counted at Airflow's own lookup (which still runs)."""
    from airflow.models.connection import Connection

    seen: list[str] = []
    real = Connection.get_connection_from_secrets.__func__  # type: ignore[attr-defined]

    def counted(cls: Any, conn_id: str) -> Any:
        seen.append(conn_id)
        return real(cls, conn_id)

    monkeypatch.setattr(Connection, "get_connection_from_secrets", classmethod(counted))
    return seen


@pytest.fixture(scope="module")
def served(airflow_db) -> Iterator[str]:
    """The receiver served by uvicorn on 127.0.0.1, with a short body deadline."""
    with serve(create_app(read_timeout=1.0)) as url:
        yield url


def raw_exchange(url: str, grant: WebhookGrant, head: dict[str, str], parts: list[bytes], pause: float = 0) -> str:
    """Send a request by hand (a lying Content-Length, a chunked stream, a stall) and return the answer."""
    address = urlsplit(url)
    lines = [f"POST {grant.path()} HTTP/1.1", f"Host: {address.netloc}", *(f"{k}: {v}" for k, v in head.items())]
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            for part in parts:
                sock.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the receiver answered and hung up mid-body: what it should do
        time.sleep(pause)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer.decode("latin-1")


def signed(grant: WebhookGrant) -> dict[str, str]:
    return {SIGNATURE_HEADER: sign(SECRET, grant)}


# -- bodies: memory and time --------------------------------------------------------------------------------------
def test_declared_oversized_body_is_refused_before_it_is_sent(receiver, target, served, monkeypatch):
    started = time.monotonic()
    head = {**signed(target), "Content-Length": str(10 * 1024**3)}
    answer = raw_exchange(served, target, head, [b"x" * 1024 * 1024])
    assert answer.startswith("HTTP/1.1 413") and "connection: close" in answer.lower()
    assert time.monotonic() - started < 5
    assert untouched(target)


def test_streamed_body_stops_at_the_limit(receiver, target, served):
    chunk = b"x" * 65536
    chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * (MAX_BODY_BYTES // len(chunk) + 64)
    head = {**signed(target), "Transfer-Encoding": "chunked"}
    answer = raw_exchange(served, target, head, [*chunks, b"0\r\n\r\n"])
    assert answer.startswith("HTTP/1.1 413")
    assert untouched(target)


def test_slow_body_is_cut_off(receiver, target, served):
    started = time.monotonic()
    answer = raw_exchange(served, target, {**signed(target), "Content-Length": "1000"}, [b'{"workf'], pause=0.1)
    assert answer.startswith("HTTP/1.1 408")
    assert time.monotonic() - started < 5  # the deadline is 1 s here (30 s by default)
    assert untouched(target)


def test_unauthenticated_oversized_body_costs_no_lookup(receiver, target, lookups):
    response = receiver.post(target.path(), content=b"{}", headers={"Content-Length": str(MAX_BODY_BYTES + 1)})
    assert response.status_code == 413 and lookups == []


# -- whose secret opens which mailbox ---------------------------------------------------------------------------
def test_secret_of_a_connection_of_another_type_signs_nothing(receiver, target, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SOME_HTTP", alta_connection(conn_type="http"))
    forged = other(target, conn_id="some_http")
    assert post(receiver, forged, run_body()).status_code == 401
    assert untouched(target)


def test_secret_of_another_alta_connection_does_not_open_this_task(receiver, target, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_OTHER", alta_connection(secret="whs-other-connection-SECRET-77"))
    forged = other(target, conn_id="alta_other")
    response = post(receiver, forged, run_body(), secret="whs-other-connection-SECRET-77")
    assert response.status_code == 403 and response.json()["result"] == "other_connection"
    assert untouched(target)


def test_token_of_an_earlier_try_is_refused(receiver, target):
    set_state(target.ref, "deferred", try_number=target.try_number + 1)  # the task was retried
    response = post(receiver, target, run_body())
    assert response.status_code == 410 and response.json()["result"] == "other_try"
    assert untouched(target)
    assert post(receiver, other(target, try_number=target.try_number + 1), run_body()).status_code == 200


def test_expired_token_is_refused_without_a_lookup(receiver, target, lookups):
    expired = other(target, expires_at=int(time.time()) - 1)
    assert post(receiver, expired, run_body()).status_code == 401
    assert lookups == [] and untouched(target)


def test_status_going_backwards_is_ignored(receiver, target):
    set_xcom(target.ref, XCOM_RUN_ID, RUN_ID)
    assert post(receiver, target, run_body(status="SUCCEED")).json()["result"] == "stored"
    stored = xcom(target.ref, MAILBOX_KEY)
    for status in ("RUNNING", "FAILED", "PENDING", "SUCCEED") * 3:
        response = post(receiver, target, run_body(status=status))
        assert response.status_code == 200
        assert response.json()["result"] == ("duplicate" if status == "SUCCEED" else "stale")
    assert xcom(target.ref, MAILBOX_KEY) == stored  # the trigger sees one notice, so spends one query


# -- the log ------------------------------------------------------------------------------------------------------
def hostile_ids() -> list[str]:
    return [f"task{ch}2026-01-01 INFO Alta webhook for x: 200 stored" for ch in LOG_BREAKERS] + [
        "\x1b[2J\x1b[31mred",
        "t" * 250,
    ]


def test_nothing_attacker_controlled_is_logged_raw(receiver, target, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG, logger="airflow_provider_alta")
    for task_id in hostile_ids():
        forged = other(target, task_id=task_id)
        post(receiver, forged, run_body(), signature=None)  # refused unauthenticated: DEBUG
        post(receiver, forged, run_body(run_id="r\r\nforged\u2028line"))  # authenticated: 404 at INFO
    post(receiver, target, run_body(run_id="r\x1b[31m\n\x85"))
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) > 2 * len(hostile_ids())
    for message in messages:
        assert not any(ch in message for ch in LOG_BREAKERS), repr(message)
        assert len(message) < 1000


def test_bad_requests_add_a_line_a_minute_to_the_log(receiver, target):
    """However many: the bench measures 1,000 on a real API server."""
    records: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("airflow_provider_alta")
    logger.addHandler(handler)
    try:
        long_id = other(target, task_id="t" * 250)
        for i in range(200):
            grant = (long_id, other(target, conn_id=f"ghost{i % 7}"), target)[i % 3]
            post(receiver, grant, run_body(), signature="sha256=" + "0" * 64)
    finally:
        logger.removeHandler(handler)
    assert 1 <= len(records) <= 2 and sum(map(len, records)) < 1000  # one summary line a minute
    assert "refused" in records[0] and untouched(target)


# -- lookups ------------------------------------------------------------------------------------------------------
def test_secrets_are_cached_hits_and_misses(receiver, target, lookups):
    for _ in range(30):
        assert post(receiver, other(target, conn_id="ghost"), run_body(), signature="sha256=0").status_code == 401
        assert post(receiver, target, run_body(), signature="sha256=0").status_code == 401
    set_xcom(target.ref, XCOM_RUN_ID, RUN_ID)
    assert post(receiver, target, run_body()).status_code == 200
    assert sorted(lookups) == sorted(["ghost", CONN_ID])


#: Lookups of uncached ids allowed at once (the budget starts full).
BURST = int(LOOKUPS_PER_SECOND)


def test_lookups_of_made_up_connection_ids_are_rate_limited(receiver, target, lookups):
    # The budget's clock stands still, so the figure does not depend on how fast this machine sends 100 requests.
    frozen = SecretCache(MailboxStore().webhook_secret, clock=lambda: 1000.0)
    client = TestClient(create_app(secrets=frozen))
    answers = [
        post(client, other(target, conn_id=f"made_up_{i}"), run_body(), signature="sha256=0").status_code
        for i in range(100)
    ]
    assert answers == [401] * BURST + [429] * (100 - BURST)
    assert len(lookups) == BURST  # the burst, then nothing until the budget refills


# -- never a 500, never a redirect --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        json.dumps({**run_body(), "workflowRunId": 1}).encode()[:-1] + b"0" * 5000 + b"}",
        b"\xff\xfe not utf-8",
        b"",
    ],
    ids=["nested-lists", "nested-objects", "huge-number", "not-utf8", "empty"],
)
def test_hostile_bodies_are_400(receiver, target, body):
    assert post(receiver, target, body).status_code == 400
    assert untouched(target)


@pytest.mark.parametrize(
    "changes",
    [
        {"map_index": 2**70},
        {"map_index": -2},
        {"map_index": 2**31},
        {"try_number": 2**40},
        {"try_number": -1},
        {"expires_at": 10**30},
        {"task_id": "t" * 60_000},
        {"dag_id": "bell\x07"},
    ],
    ids=[
        "index-70-bits",
        "index-negative",
        "index-32-bits",
        "try-40-bits",
        "try-negative",
        "expiry-huge",
        "60KB-id",
        "control-char",
    ],
)
def test_paths_no_task_instance_can_have_are_404_without_a_lookup(receiver, target, changes, lookups):
    response = post(receiver, other(target, **changes), run_body())
    assert response.status_code == 404 and lookups == []
    assert untouched(target)


@pytest.mark.parametrize("suffix", ["/", "//", "/extra"])
def test_no_redirects(receiver, target, suffix):
    response = receiver.post(target.path() + suffix, content=b"{}", headers=signed(target), follow_redirects=False)
    assert response.status_code == 404 and "location" not in response.headers


def test_odd_requests_are_4xx(receiver, target):
    assert receiver.get(target.path()).status_code == 405
    assert receiver.post(target.path().replace("/-1/", "/01/"), content=b"{}").status_code == 404
    assert (
        receiver.post(target.path(), content=b"{}", headers={SIGNATURE_HEADER: b"sha256=\xff\xfe"}).status_code == 401
    )
    assert untouched(target)


async def test_bodies_arriving_together_share_one_buffer_budget():
    from airflow_provider_alta._webhook.request_body import BodyRefused, BufferBudget, read_body

    budget = BufferBudget(10)
    gate = asyncio.Event()

    async def stream(*parts: bytes, wait: bool = False) -> Any:
        for part in parts:
            yield part
            if wait:
                await gate.wait()

    first = asyncio.ensure_future(read_body(stream(b"x" * 6, b"y", wait=True), 100, budget))
    await asyncio.sleep(0.01)
    with pytest.raises(BodyRefused) as refused:
        await read_body(stream(b"z" * 6), 100, budget)
    assert refused.value.status == 429
    gate.set()
    assert await first == b"x" * 6 + b"y"
    assert await read_body(stream(b"z" * 10), 100, budget) == b"z" * 10  # every byte was given back


def test_the_servers_access_log_sees_the_path_capped(receiver, target):
    """Airflow's access log middleware reads the path from the shared ASGI scope after the answer."""
    from fastapi import FastAPI

    logged: list[str] = []

    class AccessLog:  # what Airflow's HttpAccessLogMiddleware does with the path
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            try:
                await self.app(scope, receive, send)
            finally:
                logged.append(scope["path"])

    root = FastAPI()
    root.add_middleware(AccessLog)
    root.mount("/alta", create_app())
    client = TestClient(root)
    # (A path with a line feed never reaches the plugin: the mount does not match it, Airflow answers it.)
    for task_id in ("t" * 60_000, "t\r2026-01-01 FORGED\u2028\x85\x0b\x1b[31m"):
        client.post("/alta" + other(target, task_id=task_id).path(), content=b"{}")
    assert len(logged) == 2
    for path in logged:
        assert len(path) < 300 and not any(ch in path for ch in LOG_BREAKERS), repr(path)
