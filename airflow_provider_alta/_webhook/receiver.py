"""The Alta webhook receiver: a FastAPI app Airflow's API server mounts under ``/alta``.

Airflow does not authenticate plugin endpoints, so this one does: every
delivery must carry its grant's token (see :mod:`airflow_provider_alta._webhook.contract`).
Before authentication, nothing the caller sends costs more than a dict lookup
and a hash: the path is checked for ids Airflow could hold, a declared
``Content-Length`` over 8 MiB is refused, expired grants are refused, and
secrets come from a short cache. The app answers

* 404 for a path that names no possible task instance (and for anything
  outside the route: no redirects);
* 401 for a missing, wrong or expired token (nothing is read or written;
  whether the task instance exists is not revealed); 429 while too many
  unknown connection ids are being looked up;
* 413 for a body over 8 MiB, 408 for one not received within 30 s, 429 while
  other bodies fill the 12 MiB all bodies may hold at once, 400 for a body
  that is not an Alta run;
* 404 for an unknown task instance, or one that opened no mailbox; 410 for a
  grant of another try; 403 when the task runs on another connection than
  the one that signed; 409 when the body names another run than the one the
  task started;
* 200 otherwise: ``stored``, ``duplicate`` (same run and status already in
  the mailbox), ``stale`` (a status behind the stored one, ignored) or
  ``task_finished`` (nothing to wake).

Batches' deliveries and reads (``/alta/webhook/batch/b1/...``, ``POST /alta/batch-notices/b1``) are answered by
:mod:`.batch_receiver` with the same guards.

``POST /alta/mailboxes`` is the triggerers' batched read (see :mod:`airflow_provider_alta._webhook.mailbox_protocol`): a
body of at most 2 MiB naming a connection, the time it was signed and up to 2,000 task instances, signed with
that connection's ``webhook_secret`` over its exact bytes. It answers 200 with the delivered notices of the
mailboxes opened through that connection (one SQL query); 401 for a missing or wrong signature, an unknown or
secretless connection, or an ``issued_at`` more than 60 s away (alike, revealing no connection id); 413 for a
larger body or more refs; 400 for a malformed body; 429 as above. Answered reads are logged at DEBUG (one a
second per triggerer), refusals as the webhooks' are.

Authenticated outcomes are logged at INFO with the task instance and run id,
escaped (see :mod:`.receiver_log`); refusals before authentication at DEBUG,
with a count once a minute. Never a body, header or secret.

:class:`Receiver` makes every one of these answers; :func:`create_app` only routes the two endpoints to it.
FastAPI and Starlette are imported where they are used, so listing the package's modules does not load them.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations at runtime, and
# ``Request`` is imported inside ``create_app``.

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_alta._webhook.contract import (
    MAX_BODY_BYTES,
    ROUTE,
    SIGNATURE_HEADER,
    WebhookGrant,
    grant_from_path,
    mailbox_notice,
    signature_matches,
)
from airflow_provider_alta._webhook.mailbox_protocol import (
    MAILBOXES_ROUTE,
    MAX_BATCH_BODY_BYTES,
    BatchRefused,
    MailboxBatch,
    body_signature_matches,
    parse_batch,
)
from airflow_provider_alta._webhook.receiver_log import CappedPathInAccessLog, RejectionLog, printable
from airflow_provider_alta._webhook.request_body import (
    READ_TIMEOUT_SECONDS,
    BodyRefused,
    BufferBudget,
    check_declared_length,
    read_body,
)
from airflow_provider_alta._webhook.secret_cache import LookupsExhausted, SecretCache
from airflow_provider_alta.exceptions import AltaError

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from airflow_provider_alta._webhook.batch_notice_store import BatchNoticeStore
    from airflow_provider_alta._webhook.mailbox_store import MailboxStore

log = logging.getLogger(__name__)

#: Authenticated outcomes other than 200, by what the store did.
_REFUSED_DELIVERIES = {
    "unknown_task": (404, "no such task instance"),
    "no_mailbox": (404, "the task instance is not waiting for a webhook"),
    "other_try": (410, "the token was issued to another try of this task instance"),
    "other_connection": (403, "the task instance does not run on this connection"),
    "other_run": (409, "the body names another run than the one this task started"),
}
_UNAUTHORIZED = f"missing, invalid or expired {SIGNATURE_HEADER} header"
_UNAUTHORIZED_BATCH = f"missing, invalid or stale {SIGNATURE_HEADER} header (issued_at must be within 60 s)"
_T = TypeVar("_T")


def _json(body: Any, status: int = 200, headers: "dict[str, str] | None" = None) -> "JSONResponse":
    from starlette.responses import JSONResponse

    return JSONResponse(body, status_code=status, headers=headers)


async def _off_the_loop(call: Callable[..., _T], *args: Any) -> _T:
    """A blocking call (the database, the secrets backend) in the server's thread pool."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(call, *args)


class Receiver:
    """The receiver's answers, over one mailbox store and one cache of connection secrets.

    One per app: it holds what the requests share (the secret cache, the count of refusals, the bytes all
    bodies may hold at once), and nothing about any one request.
    """

    def __init__(self, store: "MailboxStore", secrets: SecretCache, read_timeout: float = READ_TIMEOUT_SECONDS) -> None:
        self.store = store
        self.secrets = secrets
        self.read_timeout = read_timeout
        self.rejections = RejectionLog(log)
        self.buffers = BufferBudget()

    @staticmethod
    def reply(status: int, result: str, detail: "str | None" = None, *, close: bool = False) -> "JSONResponse":
        """The JSON answer every outcome shares: ``{"result": ..., "detail": ...}``."""
        body: dict[str, Any] = {"result": result}
        if detail:
            body["detail"] = detail
        # A refused body may still be arriving: closing the connection stops the sender at once.
        headers = {"Connection": "close"} if close else None
        return _json(body, status, headers)

    def refuse(self, status: int, result: str, about: str, detail: str) -> "JSONResponse":
        """An answer before authentication: logged at DEBUG, counted, nothing read."""
        self.rejections.refused(status, result, about)
        return self.reply(status, result, detail, close=True)

    def answer(
        self,
        status: int,
        result: str,
        grant: WebhookGrant,
        detail: "str | None" = None,
        notice: "dict[str, Any] | None" = None,
        *,
        close: bool = False,
    ) -> "JSONResponse":
        """An answer to an authenticated caller, logged at INFO."""
        about = f" (run {printable(notice['workflow_run_id'])}, {notice['status']})" if notice else ""
        log.info("Alta webhook for %s%s: %s %s", printable(grant.describe()), about, status, result)
        return self.reply(status, result, detail, close=close)

    def busy(self, about: str) -> "JSONResponse":
        """429: the lookups of unknown connections are spent for now."""
        response = self.refuse(429, "busy", about, "too many requests for unknown connections; retry later")
        response.headers["Retry-After"] = "1"
        return response

    async def secret_of(self, conn_id: str) -> "str | None":
        """The connection's webhook secret: from the cache, else looked up off the event loop while lookups last
        (:class:`~.secret_cache.LookupsExhausted` otherwise)."""
        known, secret = self.secrets.cached(conn_id)
        if known:
            return secret
        self.secrets.reserve_lookup()
        return await _off_the_loop(self.secrets.load, conn_id)

    async def receive(self, grant: "WebhookGrant | None", request: "Request") -> "JSONResponse":
        """A webhook delivery for ``grant`` (``None``: the path names no possible task instance)."""
        from starlette.requests import ClientDisconnect

        if grant is None:
            return self.refuse(404, "not_found", str(request.scope.get("path", "")), "no such task instance")
        refused = await self._authenticate(grant, request)
        if refused is not None:
            return refused
        try:
            raw = await read_body(request.stream(), MAX_BODY_BYTES, self.buffers, self.read_timeout)
        except BodyRefused as too_much:
            return self.answer(too_much.status, too_much.result, grant, too_much.detail, close=True)
        except ClientDisconnect:
            return self.answer(400, "disconnected", grant, "the body ended early", close=True)
        return await self._deliver(grant, raw)

    async def _authenticate(self, grant: WebhookGrant, request: "Request") -> "JSONResponse | None":
        """The refusal of a delivery before its body is read, or ``None`` when its token is good."""
        return await self.check_token(
            grant.describe(),
            request,
            expired=grant.expired(),
            conn_id=grant.ref.conn_id,
            matches=lambda secret, header: signature_matches(secret, grant, header),
        )

    async def check_token(
        self,
        about: str,
        request: "Request",
        *,
        expired: bool,
        conn_id: str,
        matches: "Callable[[str | None, str | None], bool]",
    ) -> "JSONResponse | None":
        """The refusal of a delivery (single run or batch item) before its body is read: a declared body over the
        limit, an expired grant, a token the connection's secret did not sign; ``None`` when all is well."""
        try:
            check_declared_length(request.headers, MAX_BODY_BYTES)
        except BodyRefused as refused:
            return self.refuse(refused.status, refused.result, about, refused.detail)
        if expired:
            return self.refuse(401, "unauthorized", about, _UNAUTHORIZED)
        try:
            secret = await self.secret_of(conn_id)
        except LookupsExhausted:
            return self.busy(about)
        if not matches(secret, request.headers.get(SIGNATURE_HEADER)):
            return self.refuse(401, "unauthorized", about, _UNAUTHORIZED)
        return None

    async def _deliver(self, grant: WebhookGrant, raw: bytes) -> "JSONResponse":
        """Put an authenticated body's notice into the mailbox, and say what became of it."""
        from airflow_provider_alta._webhook.mailbox_store import Delivery

        try:
            notice = mailbox_notice(json.loads(raw))
        except (ValueError, RecursionError, AltaError):
            return self.answer(400, "not_a_run", grant, "the body is not an Alta workflow run")
        outcome, state = await _off_the_loop(self.store.deliver, grant, notice)
        if outcome.value in _REFUSED_DELIVERIES:
            status, detail = _REFUSED_DELIVERIES[outcome.value]
            return self.answer(status, outcome.value, grant, detail, notice)
        said = {Delivery.TASK_FINISHED: f"task is {state}", Delivery.STALE: "a later status of this run is stored"}
        return self.answer(200, outcome.value, grant, said.get(outcome), notice)

    async def read_mailboxes(self, request: "Request") -> "JSONResponse":
        """A triggerer's batched read: the delivered notices of the mailboxes its connection opened."""
        from starlette.requests import ClientDisconnect

        about = "a batched mailbox read"
        try:
            check_declared_length(request.headers, MAX_BATCH_BODY_BYTES)
            raw = await read_body(request.stream(), MAX_BATCH_BODY_BYTES, self.buffers, self.read_timeout)
            batch = parse_batch(raw)
        except (BodyRefused, BatchRefused) as refused:
            return self.refuse(refused.status, refused.result, about, refused.detail)
        except ClientDisconnect:
            return self.refuse(400, "disconnected", about, "the body ended early")
        about = f"a batched mailbox read via {batch.conn_id} ({len(batch.refs)} refs)"
        unauthorized = await self._authenticate_batch(batch, raw, request.headers.get(SIGNATURE_HEADER), about)
        if unauthorized is not None:
            return unauthorized
        notices = await _off_the_loop(self.store.notices, batch.conn_id, batch.refs)
        log.debug("Alta webhook mailboxes: %s answered with %d notice(s)", printable(about), len(notices))
        return _json({"notices": [[index, notice] for index, notice in notices]})

    async def _authenticate_batch(
        self, batch: MailboxBatch, raw: bytes, signature: "str | None", about: str
    ) -> "JSONResponse | None":
        """The refusal of a batched read, or ``None`` when it is fresh and signed with its connection's secret."""
        return await self.check_signed_read(about, raw, signature, fresh=batch.fresh(), conn_id=batch.conn_id)

    async def check_signed_read(
        self, about: str, raw: bytes, signature: "str | None", *, fresh: bool, conn_id: str
    ) -> "JSONResponse | None":
        """The refusal of a signed read (a triggerer's mailboxes, a batch's notices), or ``None`` when it is fresh
        and signed over its exact bytes with its connection's secret."""
        if not fresh:
            return self.refuse(401, "unauthorized", about, _UNAUTHORIZED_BATCH)
        try:
            secret = await self.secret_of(conn_id)
        except LookupsExhausted:
            return self.busy(about)
        if not body_signature_matches(secret, raw, signature):
            return self.refuse(401, "unauthorized", about, _UNAUTHORIZED_BATCH)
        return None


def create_app(
    store: "MailboxStore | None" = None,
    secrets: "SecretCache | None" = None,
    read_timeout: float = READ_TIMEOUT_SECONDS,
    batch_store: "BatchNoticeStore | None" = None,
) -> "FastAPI":
    """Build the receiver app (``store`` and ``batch_store`` default to the metadata database, ``secrets`` to a
    cache over it); the batches' routes are answered by :class:`~.batch_receiver.BatchReceiver`."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    from airflow_provider_alta._webhook.batch_contract import BATCH_NOTICES_ROUTE, BATCH_ROUTE, batch_grant_from_path
    from airflow_provider_alta._webhook.batch_notice_store import BatchNoticeStore
    from airflow_provider_alta._webhook.batch_receiver import BatchReceiver
    from airflow_provider_alta._webhook.mailbox_store import MailboxStore

    mailbox = store or MailboxStore()
    receiver = Receiver(mailbox, secrets or SecretCache(mailbox.webhook_secret), read_timeout)
    batches = BatchReceiver(receiver, batch_store or BatchNoticeStore(mailbox))
    app = FastAPI(
        title="Alta webhook receiver", docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False
    )
    app.add_middleware(CappedPathInAccessLog)

    @app.post(ROUTE)
    async def receive(
        conn_id: str,
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: str,
        try_number: str,
        expires_at: str,
        request: Request,
    ) -> JSONResponse:
        grant = grant_from_path(conn_id, dag_id, run_id, task_id, map_index, try_number, expires_at)
        return await receiver.receive(grant, request)

    @app.post(MAILBOXES_ROUTE)
    async def read_mailboxes(request: Request) -> JSONResponse:
        return await receiver.read_mailboxes(request)

    @app.post(BATCH_ROUTE)
    async def receive_batch(conn_id: str, batch_id: str, item: str, expires_at: str, request: Request) -> JSONResponse:
        return await batches.receive(batch_grant_from_path(conn_id, batch_id, item, expires_at), request)

    @app.post(BATCH_NOTICES_ROUTE)
    async def read_batch_notices(request: Request) -> JSONResponse:
        return await batches.read_notices(request)

    return app
