"""The receiver's methods, called directly: each answer, the secret lookup, a delivery and a batched read.

The app around them (routing, the HTTP server, the attacks) is tested in test_webhook_receiver.py,
test_webhook_attacks.py and test_mailbox_batch.py; here each decision is one call, with a real Starlette request
over an ASGI message stream, a real secret cache, and the real mailbox store where a test reaches the database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest

from airflow_provider_alta._webhook.contract import MAILBOX_KEY, SIGNATURE_HEADER, TaskInstanceRef, WebhookGrant, sign
from airflow_provider_alta._webhook.mailbox_protocol import batch_body, sign_body
from airflow_provider_alta._webhook.mailbox_store import MailboxStore
from airflow_provider_alta._webhook.receiver import Receiver
from airflow_provider_alta._webhook.secret_cache import LookupsExhausted, SecretCache
from tests.plugins.receiver_support import CONN_ID, RUN_ID, SECRET, run_body, untouched, xcom

LOGGER = "airflow_provider_alta._webhook.receiver"
REF = TaskInstanceRef(conn_id=CONN_ID, dag_id="d", run_id="manual__1", task_id="t")


class Secrets:
    """The connections' secrets, counting lookups."""

    def __init__(self) -> None:
        self.known = {CONN_ID: SECRET}
        self.lookups: list[str] = []

    def __call__(self, conn_id: str) -> str | None:
        self.lookups.append(conn_id)
        return self.known.get(conn_id)


@pytest.fixture
def secrets() -> Secrets:
    return Secrets()


@pytest.fixture
def receiver(secrets) -> Receiver:
    return Receiver(MailboxStore(), SecretCache(secrets), read_timeout=2.0)


def request(path: str, body: bytes = b"", headers: dict[str, str] | None = None, *, readable: bool = True) -> Any:
    """A Starlette request as the server hands it over; ``readable=False``: reading its body fails the test."""
    from starlette.requests import Request

    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        assert readable, "the body was read"
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    raw = [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    scope = {"type": "http", "method": "POST", "path": path, "headers": raw, "query_string": b""}
    return Request(scope, receive)


def delivery(
    grant: WebhookGrant, body: Any, signature: str | None = "good", length: int | None = None, **kwargs: Any
) -> Any:
    raw = json.dumps(body).encode()
    headers = {"Content-Length": str(len(raw) if length is None else length)}
    if signature is not None:
        headers[SIGNATURE_HEADER] = sign(SECRET, grant) if signature == "good" else signature
    return request(grant.path(), raw, headers, **kwargs)


def answered(response: Any) -> tuple[int, dict[str, Any], str | None]:
    return response.status_code, json.loads(response.body), response.headers.get("connection")


def test_reply_is_the_shape_every_answer_shares():
    assert answered(Receiver.reply(200, "stored")) == (200, {"result": "stored"}, None)
    closing = Receiver.reply(413, "too_large", "at most 8 MiB", close=True)
    assert answered(closing) == (413, {"result": "too_large", "detail": "at most 8 MiB"}, "close")


def test_refuse_logs_at_debug_escaped_and_counts_once_a_minute(receiver, caplog):
    caplog.set_level(logging.DEBUG, LOGGER)
    first = receiver.refuse(401, "unauthorized", "d/r\r\nforged line", "bad token")
    second = receiver.refuse(404, "not_found", "elsewhere", "no such task instance")
    assert answered(first) == (401, {"result": "unauthorized", "detail": "bad token"}, "close")
    assert second.status_code == 404
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert debug[0] == "Alta webhook for d/r\\x0d\\x0aforged line: 401 unauthorized"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "refused 1 unauthenticated request(s) since the receiver started" in warnings[0]


def test_answer_tells_an_authenticated_outcome_at_info(receiver, caplog):
    caplog.set_level(logging.INFO, LOGGER)
    grant = WebhookGrant(REF, 1, int(time.time()) + 60)
    response = receiver.answer(409, "other_run", grant, "another run", {"workflow_run_id": "r\n2", "status": "FAILED"})
    assert answered(response) == (409, {"result": "other_run", "detail": "another run"}, None)
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert line == f"Alta webhook for {grant.describe()} (run r\\x0a2, FAILED): 409 other_run"


def test_busy_asks_to_come_back_in_a_second(receiver):
    response = receiver.busy("a delivery")
    status, body, close = answered(response)
    assert (status, body["result"], close) == (429, "busy", "close")
    assert "unknown connections" in body["detail"] and response.headers["Retry-After"] == "1"


def test_secret_of_caches_answers_and_rations_lookups(secrets):
    receiver = Receiver(MailboxStore(), SecretCache(secrets, lookups_per_second=2, clock=lambda: 0.0))
    assert asyncio.run(receiver.secret_of(CONN_ID)) == SECRET
    assert asyncio.run(receiver.secret_of(CONN_ID)) == SECRET
    assert asyncio.run(receiver.secret_of("no_such_conn")) is None
    assert asyncio.run(receiver.secret_of("no_such_conn")) is None  # a miss is remembered too
    assert secrets.lookups == [CONN_ID, "no_such_conn"]
    with pytest.raises(LookupsExhausted):
        asyncio.run(receiver.secret_of("yet_another"))
    assert secrets.lookups == [CONN_ID, "no_such_conn"]


def test_receive_refuses_an_impossible_path_without_reading(receiver):
    response = asyncio.run(receiver.receive(None, request("/webhook/v1/x", readable=False)))
    assert answered(response) == (404, {"result": "not_found", "detail": "no such task instance"}, "close")


@pytest.mark.parametrize(
    ("grant", "signature", "length", "status"),
    [
        (WebhookGrant(REF, 1, int(time.time()) - 1), "good", None, 401),
        (WebhookGrant(REF, 1, int(time.time()) + 60), "sha256=" + "0" * 64, None, 401),
        (WebhookGrant(REF, 1, int(time.time()) + 60), None, None, 401),
        (WebhookGrant(REF, 1, int(time.time()) + 60), "good", 9 * 2**20, 413),
    ],
    ids=["expired", "wrong-signature", "no-signature", "declared-too-large"],
)
def test_receive_refuses_before_reading_the_body(receiver, secrets, grant, signature, length, status):
    sent = delivery(grant, run_body(), signature, length, readable=False)
    response = asyncio.run(receiver.receive(grant, sent))
    assert response.status_code == status and response.headers["connection"] == "close"
    assert secrets.lookups == ([] if status == 413 or grant.expired() else [CONN_ID])


def test_receive_stores_an_authenticated_notice(receiver, target):
    response = asyncio.run(receiver.receive(target, delivery(target, run_body())))
    assert answered(response) == (200, {"result": "stored"}, None)
    assert xcom(target.ref, MAILBOX_KEY)["workflow_run_id"] == RUN_ID


def test_receive_answers_a_body_that_is_no_run_and_stores_nothing(receiver, target):
    response = asyncio.run(receiver.receive(target, delivery(target, {"not": "a run"})))
    assert answered(response) == (400, {"result": "not_a_run", "detail": "the body is not an Alta workflow run"}, None)
    assert untouched(target)


def test_read_mailboxes_answers_a_signed_read_with_the_notices(receiver, target):
    asyncio.run(receiver.receive(target, delivery(target, run_body())))
    body = batch_body(CONN_ID, [target.ref])
    signed = {SIGNATURE_HEADER: sign_body(SECRET, body), "Content-Length": str(len(body))}
    response = asyncio.run(receiver.read_mailboxes(request("/mailboxes", body, signed)))
    assert response.status_code == 200
    [[index, notice]] = json.loads(response.body)["notices"]
    assert index == 0 and notice["workflow_run_id"] == RUN_ID and notice["conn_id"] == CONN_ID


@pytest.mark.parametrize(
    ("body", "signed_with", "status", "result"),
    [
        (b"[not json", SECRET, 400, "malformed"),
        (batch_body(CONN_ID, [REF], now=time.time() - 3600), SECRET, 401, "unauthorized"),
        (batch_body(CONN_ID, [REF]), "another-secret-0123456789", 401, "unauthorized"),
        (batch_body("no_such_conn", [REF]), SECRET, 401, "unauthorized"),
    ],
    ids=["malformed", "stale", "wrong-secret", "unknown-connection"],
)
def test_read_mailboxes_refuses_what_it_cannot_trust(receiver, body, signed_with, status, result):
    signed = {SIGNATURE_HEADER: sign_body(signed_with, body), "Content-Length": str(len(body))}
    response = asyncio.run(receiver.read_mailboxes(request("/mailboxes", body, signed)))
    assert response.status_code == status and json.loads(response.body)["result"] == result
    assert response.headers["connection"] == "close"
