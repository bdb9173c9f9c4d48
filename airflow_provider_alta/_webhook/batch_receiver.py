"""The receiver's answers to batches: their deliveries and their signed reads (see :mod:`.batch_contract`).

``POST /alta/webhook/batch/b1/{conn_id}/{batch_id}/{item}/{expires_at}`` is defended as single-run deliveries
are, all before the body is read: 404 for a path no batch could have handed out; 413 for a declared body over
8 MiB; 401 for an expired grant, or a token missing, wrong, or signed by no ``alta`` connection's secret; 429
while unknown connections' lookups are spent. Then the body, read as a stream within the shared budget (413,
408, 429), must be an Alta run (else 400 ``not_a_run``) and is kept with its item: 200 ``stored``,
``duplicate`` (that run of that item already kept with that status) or ``stale`` (a later status kept).

``POST /alta/batch-notices/b1`` is a batch's read: a body of at most 32 KiB naming the connection, the batch,
the page's start and the ids of the notices the batch has kept, signed with the connection's secret over its
exact bytes and issued within 60 s (else 401, alike for every cause); it forgets the acknowledged rows, then
answers up to 500 notices (and 16 MiB of bodies) after the page's start, with ``more`` telling whether others
remain. A connection
reads only the rows its own tokens delivered.

Logged as single-run deliveries are: authenticated deliveries at INFO (batch, item, run id, status), reads at
DEBUG, refusals before authentication at DEBUG with a count a minute; never a token, a secret or a body.
"""

# No ``from __future__ import annotations``: as in :mod:`.receiver`, for the annotations' sake of one style.

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from airflow_provider_alta._webhook.batch_contract import (
    MAX_NOTICES_PER_ANSWER,
    MAX_NOTICES_REQUEST_BYTES,
    BatchGrant,
    NoticesRequest,
    batch_signature_matches,
    parse_notices_request,
)
from airflow_provider_alta._webhook.contract import MAX_BODY_BYTES, MAX_ID_LENGTH, SIGNATURE_HEADER
from airflow_provider_alta._webhook.mailbox_protocol import BatchRefused
from airflow_provider_alta._webhook.receiver_log import printable
from airflow_provider_alta._webhook.request_body import (
    BodyRefused,
    BufferBudget,
    check_declared_length,
    read_body,
)
from airflow_provider_alta.exceptions import AltaError
from airflow_provider_alta.models import WorkflowRun

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from airflow_provider_alta._webhook.batch_notice_store import BatchNoticeStore

log = logging.getLogger(__name__)

#: The bodies one answer of a read carries at most (about; one body always fits).
MAX_ANSWER_BYTES = 16 * 1024 * 1024
_T = TypeVar("_T")


class ReceiverHelpers(Protocol):
    """What the batch's answers share with :class:`~.receiver.Receiver`: its budget, its log of refusals,
    its answers and its checks of tokens and signed reads (over its secret cache)."""

    buffers: BufferBudget
    read_timeout: float

    def reply(self, status: int, result: str, detail: "str | None" = None, *, close: bool = False) -> "JSONResponse":
        """The JSON answer every outcome shares."""

    def refuse(self, status: int, result: str, about: str, detail: str) -> "JSONResponse":
        """An answer before authentication (DEBUG, counted)."""

    async def check_token(
        self,
        about: str,
        request: "Request",
        *,
        expired: bool,
        conn_id: str,
        matches: "Callable[[str | None, str | None], bool]",
    ) -> "JSONResponse | None":
        """The refusal of a delivery before its body is read, or ``None`` when its token is good."""

    async def check_signed_read(
        self, about: str, raw: bytes, signature: "str | None", *, fresh: bool, conn_id: str
    ) -> "JSONResponse | None":
        """The refusal of a signed read, or ``None`` when it is fresh and signed by its connection."""


async def _off_the_loop(call: Callable[..., _T], *args: Any) -> _T:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(call, *args)


class BatchReceiver:
    """The answers to batches, over the receiver's shared guards and the batch notice store."""

    def __init__(self, receiver: ReceiverHelpers, store: "BatchNoticeStore") -> None:
        self.receiver = receiver
        self.store = store

    def answer(
        self, status: int, result: str, grant: BatchGrant, detail: "str | None" = None, run: "WorkflowRun | None" = None
    ) -> "JSONResponse":
        """An answer to an authenticated delivery, logged at INFO."""
        about = f" (run {printable(run.workflow_run_id)}, {run.status.value})" if run is not None else ""
        log.info("Alta batch webhook for %s%s: %s %s", printable(grant.describe()), about, status, result)
        return self.receiver.reply(status, result, detail, close=status >= 400)

    async def receive(self, grant: "BatchGrant | None", request: "Request") -> "JSONResponse":
        """A delivery for ``grant`` (``None``: the path names no possible batch item)."""
        from starlette.requests import ClientDisconnect

        receiver = self.receiver
        if grant is None:
            return receiver.refuse(404, "not_found", str(request.scope.get("path", "")), "no such batch item")
        refused = await self._authenticate(grant, request)
        if refused is not None:
            return refused
        try:
            raw = await read_body(request.stream(), MAX_BODY_BYTES, receiver.buffers, receiver.read_timeout)
        except BodyRefused as too_much:
            return self.answer(too_much.status, too_much.result, grant, too_much.detail)
        except ClientDisconnect:
            return self.answer(400, "disconnected", grant, "the body ended early")
        try:
            body = json.loads(raw)
            run = WorkflowRun.from_response(body, endpoint="webhook", copy_body=False)
        except (ValueError, RecursionError, AltaError):
            return self.answer(400, "not_a_run", grant, "the body is not an Alta workflow run")
        if len(run.workflow_run_id) > MAX_ID_LENGTH:
            return self.answer(400, "not_a_run", grant, "the body's workflowRunId is too long", run)
        outcome = await _off_the_loop(self.store.deliver, grant, body)
        detail = "a later status of this run is kept" if outcome.value == "stale" else None
        return self.answer(200, outcome.value, grant, detail, run)

    async def _authenticate(self, grant: BatchGrant, request: "Request") -> "JSONResponse | None":
        """The refusal of a delivery before its body is read, or ``None`` when its token is good."""
        return await self.receiver.check_token(
            grant.describe(),
            request,
            expired=grant.expired(),
            conn_id=grant.conn_id,
            matches=lambda secret, header: batch_signature_matches(secret, grant, header),
        )

    async def read_notices(self, request: "Request") -> "JSONResponse":
        """A batch's signed read: forget what it acknowledged, answer what is left after the page's start."""
        from starlette.requests import ClientDisconnect
        from starlette.responses import JSONResponse

        receiver, about = self.receiver, "a batch notices read"
        try:
            check_declared_length(request.headers, MAX_NOTICES_REQUEST_BYTES)
            raw = await read_body(request.stream(), MAX_NOTICES_REQUEST_BYTES, receiver.buffers, receiver.read_timeout)
            read = parse_notices_request(raw)
        except (BodyRefused, BatchRefused) as refused:
            return receiver.refuse(refused.status, refused.result, about, refused.detail)
        except ClientDisconnect:
            return receiver.refuse(400, "disconnected", about, "the body ended early")
        about = f"a notices read of batch {read.batch_id} via {read.conn_id}"
        signature = request.headers.get(SIGNATURE_HEADER)
        unauthorized = await receiver.check_signed_read(about, raw, signature, fresh=read.fresh(), conn_id=read.conn_id)
        if unauthorized is not None:
            return unauthorized
        rows, more = await _off_the_loop(self._forget_and_read, read)
        log.debug("Alta batch notices: %s answered %d notice(s), more: %s", printable(about), len(rows), more)
        return JSONResponse({"notices": [[notice_id, item, body] for notice_id, item, body in rows], "more": more})

    def _forget_and_read(self, read: NoticesRequest) -> "tuple[list[tuple[int, int, dict[str, Any]]], bool]":
        if read.forget:
            self.store.forget(read.conn_id, read.batch_id, read.forget)
        return self.store.read(read.conn_id, read.batch_id, read.after, MAX_NOTICES_PER_ANSWER, MAX_ANSWER_BYTES)
