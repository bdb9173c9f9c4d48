"""The batched mailbox read: one signed request answers the webhook mailboxes of many waiting task instances
(pure, no I/O).

A triggerer process holds many deferred ``airflow_webhook=True`` tasks. Instead of each trigger reading its own
mailbox XCom every second, one reader per connection sends the receiver's ``POST /alta/mailboxes`` a body

``{"conn_id": "...", "issued_at": <unix seconds>, "refs": [[dag_id, run_id, task_id, map_index], ...]}``

signed with ``HMAC-SHA256(webhook_secret, body)`` in :data:`~airflow_provider_alta._webhook.contract.SIGNATURE_HEADER`,
and gets back ``{"notices": [[index, notice], ...]}``: the refs whose mailbox holds a delivered notice and was
opened through that connection. The signature covers the exact bytes sent, ``issued_at`` bounds a replay to
:data:`MAX_CLOCK_SKEW` seconds, and the answer carries only what the receiver wrote (run id, status, arrival
time), so the secret of one connection reads nothing of another's tasks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_provider_alta._webhook.contract import MAX_ID_LENGTH, MAX_INT32, TaskInstanceRef

#: The route of the batched read inside the receiver's app.
MAILBOXES_ROUTE = "/mailboxes"
#: At most this many refs in one request (a reader with more sends several).
MAX_REFS = 2000
#: Largest body of a batched read: :data:`MAX_REFS` refs with ids at their longest fit.
MAX_BATCH_BODY_BYTES = 2 * 1024 * 1024
#: How far ``issued_at`` may be from the receiver's clock, either way.
MAX_CLOCK_SKEW = 60.0

#: Signs when the connection has no secret, so a request costs the same whether or not its connection exists.
_NO_SECRET = "alta-mailboxes-no-secret"


class BatchRefused(ValueError):
    """A batched read the receiver cannot answer: ``status`` and ``result`` say why (no caller data inside)."""

    def __init__(self, status: int, result: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.result = result
        self.detail = detail


@dataclass(frozen=True)
class MailboxBatch:
    """A parsed batched read: which connection asks, when it signed, which task instances."""

    conn_id: str
    issued_at: float
    refs: tuple[TaskInstanceRef, ...]

    def fresh(self, now: float | None = None) -> bool:
        return issued_recently(self.issued_at, now)


def issued_recently(issued_at: float, now: float | None = None) -> bool:
    """Whether a signed read's ``issued_at`` is within :data:`MAX_CLOCK_SKEW` of ``now``."""
    return abs((time.time() if now is None else now) - issued_at) <= MAX_CLOCK_SKEW


def batch_body(conn_id: str, refs: list[TaskInstanceRef], now: float | None = None) -> bytes:
    """The exact bytes a reader sends (and signs) to read ``refs``' mailboxes through ``conn_id``."""
    issued_at = int(time.time() if now is None else now)
    parts = [[ref.dag_id, ref.run_id, ref.task_id, ref.map_index] for ref in refs]
    return json.dumps({"conn_id": conn_id, "issued_at": issued_at, "refs": parts}, separators=(",", ":")).encode()


def sign_body(secret: str, body: bytes) -> str:
    """The signature header value of a batched read's body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_signature_matches(secret: str | None, body: bytes, header: str | None) -> bool:
    """Constant-time check of a batched read's signature (never true without a secret)."""
    expected = sign_body(secret or _NO_SECRET, body).encode()
    delivered = (header or "").strip().encode("utf-8", "replace")
    return hmac.compare_digest(expected, delivered) and secret is not None and bool(header)


def is_id(value: Any) -> bool:
    """Whether ``value`` could be an Airflow id (a connection's, a DAG's, a run's, a task's)."""
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH and value.isprintable()


def _malformed(what: str) -> BatchRefused:
    return BatchRefused(400, "malformed", f"the body is not a batched mailbox read: {what}")


def signed_read(raw: bytes, malformed: Callable[[str], BatchRefused]) -> tuple[dict[str, Any], str, float]:
    """The JSON object a signed read ``raw`` holds, with its ``conn_id`` and ``issued_at`` checked; ``malformed``
    makes the refusal for anything else."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise malformed("not JSON") from None
    if not isinstance(body, dict):
        raise malformed("not an object")
    conn_id, issued_at = body.get("conn_id"), body.get("issued_at")
    if not is_id(conn_id):
        raise malformed("no valid conn_id")
    if isinstance(issued_at, bool) or not isinstance(issued_at, (int, float)) or not math.isfinite(issued_at):
        raise malformed("no valid issued_at")
    assert isinstance(conn_id, str)
    return body, conn_id, float(issued_at)


def parse_batch(raw: bytes) -> MailboxBatch:
    """The batch ``raw`` holds; :class:`BatchRefused` (400 or 413) for anything else.

    Only ids an Airflow task instance could have pass, so nothing else reaches the database or the secrets
    backend; too many refs are refused before any of them is looked at.
    """
    body, conn_id, issued_at = signed_read(raw, _malformed)
    refs = body.get("refs")
    if not isinstance(refs, list):
        raise _malformed("refs is not a list")
    if len(refs) > MAX_REFS:
        raise BatchRefused(413, "too_many_refs", f"at most {MAX_REFS} refs per request")
    parsed = []
    for ref in refs:
        if not (isinstance(ref, list) and len(ref) == 4 and all(is_id(part) for part in ref[:3])):
            raise _malformed("a ref is not [dag_id, run_id, task_id, map_index]")
        index = ref[3]
        if isinstance(index, bool) or not isinstance(index, int) or not -1 <= index <= MAX_INT32:
            raise _malformed("a ref's map_index is not an integer from -1")
        parsed.append(TaskInstanceRef(conn_id, ref[0], ref[1], ref[2], index))
    return MailboxBatch(conn_id, issued_at, tuple(parsed))


def parse_answer(answer: Any, count: int) -> dict[int, dict[str, Any]]:
    """The notices of a receiver's answer to a batch of ``count`` refs, by ref index (raises on a bad answer)."""
    if not isinstance(answer, dict) or not isinstance(answer.get("notices"), list):
        raise ValueError("the receiver's answer holds no notices list")
    notices: dict[int, dict[str, Any]] = {}
    for entry in answer["notices"]:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], dict)):
            raise ValueError("the receiver's answer holds a malformed notice")
        index = entry[0]
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            raise ValueError("the receiver's answer names a ref it was not asked about")
        notices[index] = entry[1]
    return notices
