"""The contract of a batch's webhook deliveries, between the batch, the receiver and the batch's reader (pure).

A batch (one task running a workflow over many items) hands every invoke a webhook naming a
:class:`BatchGrant`: the connection, the batch (:func:`batch_id_of`: stable across the task's tries, so a retry
reads what Alta delivered to the try before it), the item and an expiry, signed with the connection's
``webhook_secret`` under a message of its own (:data:`BATCH_DOMAIN`), so a single-run token never passes as a
batch token nor the reverse. The receiver keeps each delivered run body with its item in the metadata
database; the batch reads them through the API server with a signed request (:func:`notices_request_body`,
signed with :func:`~.mailbox_protocol.sign_body`) that also forgets what it acknowledged, by id, and gets back
:class:`NoticesPage` s: every notice not yet forgotten (ids page one answer, they are no cursor between reads:
on PostgreSQL a row can commit after a row with a higher id, so a reader that skipped ids below the highest it
saw would lose it). The token binds no run id (unknown until the invoke answers): the batch compares the
run ids it reads with the ones its invokes returned, and learns from them the runs of invokes a killed try
never heard answered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from airflow_provider_alta._webhook.contract import (
    SIGNATURE_HEADER,
    WebhookSettings,
    check_signer,
)
from airflow_provider_alta._webhook.mailbox_protocol import BatchRefused, is_id, issued_recently, signed_read
from airflow_provider_alta.exceptions import AltaError, AltaValidationError
from airflow_provider_alta.models import WorkflowRun

#: The version of the batch route and of what its token signs.
BATCH_ROUTE_VERSION = "b1"
#: The receiver's route of batch deliveries inside the app (mounted at ``URL_PREFIX``).
BATCH_ROUTE = f"/webhook/batch/{BATCH_ROUTE_VERSION}/{{conn_id}}/{{batch_id}}/{{item}}/{{expires_at}}"
#: The route of a batch's signed read of its deliveries.
BATCH_NOTICES_ROUTE = f"/batch-notices/{BATCH_ROUTE_VERSION}"
#: What every batch token's message starts with: a single-run token signs a JSON list, never these bytes.
BATCH_DOMAIN = b"alta-batch-b1\n"
#: The largest item number (JSON numbers stay exact up to here).
MAX_ITEM = 2**53
#: The largest notice id a read may name (the database's 64-bit integers).
MAX_NOTICE_ID = 2**63 - 1
#: At most this many notices in one answer of the receiver.
MAX_NOTICES_PER_ANSWER = 500
#: The largest body of a notices read (short fields, and the ids it forgets).
MAX_NOTICES_REQUEST_BYTES = 32 * 1024
#: Notice ids one read forgets at most (a batch acknowledges more over its next reads).
MAX_FORGET = 1000

_BATCH_ID = re.compile(r"[0-9a-f]{32}")
_NON_NEGATIVE = re.compile(r"0|[1-9][0-9]{0,15}")
_NO_SECRET = "alta-batch-webhook-no-secret"


@dataclass(frozen=True)
class BatchGrant:
    """What one batch token admits: deliveries for one item of one batch, through one connection, until
    ``expires_at``."""

    conn_id: str
    batch_id: str
    item: int
    expires_at: int

    def path(self) -> str:
        """The receiver route of this grant (inside the app), every part percent-encoded."""
        parts = (self.conn_id, self.batch_id, self.item, self.expires_at)
        return f"/webhook/batch/{BATCH_ROUTE_VERSION}/" + "/".join(quote(str(part), safe="") for part in parts)

    def message(self) -> bytes:
        """What the token signs: :data:`BATCH_DOMAIN`, then the grant as a JSON list."""
        return BATCH_DOMAIN + json.dumps([self.conn_id, self.batch_id, self.item, self.expires_at]).encode()

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at

    def describe(self) -> str:
        return f"batch {self.batch_id} item {self.item} via {self.conn_id}"


def batch_grant_from_path(conn_id: str, batch_id: str, item: str, expires_at: str) -> BatchGrant | None:
    """The grant a request's path names, or ``None`` when no batch could have handed it out.

    Checked before anything else, so oversized ids and out-of-range numbers never reach the secrets backend,
    the database or the log.
    """
    if not is_id(conn_id) or not _BATCH_ID.fullmatch(batch_id):
        return None
    if not (_NON_NEGATIVE.fullmatch(item) and _NON_NEGATIVE.fullmatch(expires_at)):
        return None
    number, expiry = int(item), int(expires_at)
    if number > MAX_ITEM or expiry <= 0:
        return None
    return BatchGrant(conn_id, batch_id, number, expiry)


def sign_batch(secret: str, grant: BatchGrant) -> str:
    """The header value that authenticates deliveries for ``grant``."""
    return "sha256=" + hmac.new(secret.encode(), grant.message(), hashlib.sha256).hexdigest()


def batch_signature_matches(secret: str | None, grant: BatchGrant, header: str | None) -> bool:
    """Constant-time check of a delivered header against ``grant``'s token (never true without a secret)."""
    expected = sign_batch(secret or _NO_SECRET, grant).encode()
    delivered = (header or "").strip().encode("utf-8", "replace")
    return hmac.compare_digest(expected, delivered) and secret is not None and bool(header)


def batch_id_of(
    conn_id: str, dag_id: str, run_id: str, task_id: str, map_index: int, fingerprint: str, output_uri: str
) -> str:
    """The id of one batch: the same for every try of the task instance over the same items and output."""
    parts = ["alta-batch", conn_id, dag_id, run_id, task_id, map_index, fingerprint, output_uri]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


def batch_grant(
    settings: WebhookSettings, conn_id: str, batch_id: str, item: int, now: float | None = None
) -> BatchGrant:
    """The grant of ``item`` of ``batch_id``, valid for the settings' token lifetime from ``now``."""
    if not settings.token_lifetime > 0:
        raise AltaValidationError(
            f"[alta] webhook_token_lifetime must be a positive number of seconds, got {settings.token_lifetime!r}"
        )
    issued = time.time() if now is None else now
    return BatchGrant(conn_id, batch_id, item, int(issued + settings.token_lifetime))


def batch_webhook(
    settings: WebhookSettings, secret: str | None, conn_type: str | None, grant: BatchGrant
) -> dict[str, Any]:
    """The invoke's webhook entry pointing Alta at the receiver for ``grant`` (the checks of
    :func:`~.contract.airflow_webhook`: the receiver configured, an ``alta`` connection, a secret)."""
    url = settings.receiver_url()
    signer = check_signer(grant.conn_id, secret, conn_type)
    return {"method": "POST", "url": url + grant.path(), "headers": {SIGNATURE_HEADER: sign_batch(signer, grant)}}


@dataclass(frozen=True)
class NoticesRequest:
    """A parsed read of a batch's deliveries: who asks, for which batch, from which notice on, what it has
    kept and may be forgotten, when it signed."""

    conn_id: str
    batch_id: str
    after: int
    forget: tuple[int, ...]
    issued_at: float

    def fresh(self, now: float | None = None) -> bool:
        """Whether ``issued_at`` is within the mailbox reads' allowed clock skew of ``now``."""
        return issued_recently(self.issued_at, now)


@dataclass(frozen=True)
class BatchNotice:
    """One delivery the receiver kept: its id (what the batch acknowledges), the item, the run as Alta sent it."""

    id: int
    item: int
    run: WorkflowRun


@dataclass(frozen=True)
class NoticesPage:
    """One answer of the receiver: notices in id order, and whether more remain after them."""

    notices: list[BatchNotice]
    more: bool


def notices_request_body(
    conn_id: str, batch_id: str, after: int, forget: Sequence[int] = (), now: float | None = None
) -> bytes:
    """The exact bytes a batch sends (and signs) to read its notices with ids over ``after`` (0 on a read's
    first page), forgetting the notices ``forget`` (at most :data:`MAX_FORGET` ids) first."""
    body = {
        "conn_id": conn_id,
        "batch_id": batch_id,
        "after": after,
        "forget": list(forget),
        "issued_at": int(time.time() if now is None else now),
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _malformed(what: str) -> BatchRefused:
    return BatchRefused(400, "malformed", f"the body is not a batch notices read: {what}")


def _is_notice_id(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and 0 <= value <= MAX_NOTICE_ID


def parse_notices_request(raw: bytes) -> NoticesRequest:
    """The read ``raw`` holds; :class:`~.mailbox_protocol.BatchRefused` (400) for anything else."""
    body, conn_id, issued_at = signed_read(raw, _malformed)
    batch_id, after, forget = body.get("batch_id"), body.get("after"), body.get("forget")
    if not (isinstance(batch_id, str) and _BATCH_ID.fullmatch(batch_id)):
        raise _malformed("no valid batch_id")
    if not _is_notice_id(after):
        raise _malformed("after must be an integer from 0")
    if not (isinstance(forget, list) and len(forget) <= MAX_FORGET and all(_is_notice_id(i) for i in forget)):
        raise _malformed(f"forget must be a list of at most {MAX_FORGET} notice ids")
    assert isinstance(after, int)
    return NoticesRequest(conn_id, batch_id, after, tuple(forget), issued_at)


def parse_notices_answer(answer: Any) -> NoticesPage:
    """The page of a receiver's answer ``{"notices": [[id, item, body], ...], "more": bool}``; ``ValueError``
    for anything else (ids not increasing, an item out of range, a body that is not an Alta run)."""
    if not isinstance(answer, dict) or not isinstance(answer.get("notices"), list):
        raise ValueError("the receiver's answer holds no notices list")
    more = answer.get("more")
    if not isinstance(more, bool):
        raise ValueError("the receiver's answer does not say whether more notices remain")
    notices: list[BatchNotice] = []
    for entry in answer["notices"]:
        if not (isinstance(entry, list) and len(entry) == 3 and _is_notice_id(entry[0]) and _is_notice_id(entry[1])):
            raise ValueError("the receiver's answer holds a malformed notice")
        notice_id, item, body = entry
        if item > MAX_ITEM or (notices and notice_id <= notices[-1].id):
            raise ValueError("the receiver's answer holds a notice out of range or out of order")
        try:
            run = WorkflowRun.from_response(body, endpoint="webhook", copy_body=False)
        except AltaError:
            raise ValueError(f"notice {notice_id} of the receiver's answer is not an Alta run") from None
        notices.append(BatchNotice(notice_id, item, run))
    return NoticesPage(notices, more)
