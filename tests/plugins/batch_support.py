"""What the batch receiver tests share: fresh batch ids, signed deliveries and reads, the table's rows."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from airflow_provider_alta._webhook.batch_contract import (
    BATCH_NOTICES_ROUTE,
    BatchGrant,
    batch_id_of,
    notices_request_body,
    sign_batch,
)
from airflow_provider_alta._webhook.contract import SIGNATURE_HEADER
from airflow_provider_alta._webhook.mailbox_protocol import sign_body
from tests.plugins.mailbox_support import OTHER_CONN_ID, OTHER_SECRET
from tests.plugins.receiver_support import CONN_ID, SECRET, alta_connection

#: An ``http`` connection holding a webhook secret: it signs nothing.
HTTP_CONN_ID = "http_with_batch_secret"


def connections_env() -> dict[str, str]:
    """Two ``alta`` connections with secrets of their own, and an ``http`` one with a secret."""
    return {
        f"AIRFLOW_CONN_{CONN_ID.upper()}": alta_connection(SECRET),
        f"AIRFLOW_CONN_{OTHER_CONN_ID.upper()}": alta_connection(OTHER_SECRET),
        f"AIRFLOW_CONN_{HTTP_CONN_ID.upper()}": alta_connection(SECRET, conn_type="http"),
    }


def new_batch(conn_id: str = CONN_ID) -> str:
    """A batch id no other test uses."""
    return batch_id_of(conn_id, "d", uuid.uuid4().hex, "t", -1, "fp", "file:///out")


def grant(batch_id: str, item: int, conn_id: str = CONN_ID, lifetime: float = 3600) -> BatchGrant:
    return BatchGrant(conn_id, batch_id, item, int(time.time() + lifetime))


def deliver(client: Any, to: BatchGrant, body: Any, signature: str | None = "good", secret: str = SECRET) -> Any:
    """POST ``body`` to ``to``'s route, with its good token, another header, or none."""
    headers = {}
    if signature == "good":
        headers[SIGNATURE_HEADER] = sign_batch(secret, to)
    elif signature is not None:
        headers[SIGNATURE_HEADER] = signature
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(to.path(), content=content, headers=headers)


def read(
    client: Any,
    batch_id: str,
    after: int = 0,
    forget: list[int] | None = None,
    *,
    conn_id: str = CONN_ID,
    secret: str | None = SECRET,
    issued_at: float | None = None,
) -> Any:
    """A batch's read as :class:`~.BatchNoticeReader` sends it, signed with ``secret`` (unsigned when ``None``)."""
    raw = notices_request_body(conn_id, batch_id, after, forget or [], now=issued_at)
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SIGNATURE_HEADER] = sign_body(secret, raw)
    return client.post(BATCH_NOTICES_ROUTE, content=raw, headers=headers)


def rows(batch_id: str) -> list[dict[str, Any]]:
    """The table's rows of ``batch_id`` (any connection), in id order."""
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_provider_alta._webhook.batch_notice_store import BATCH_NOTICES, ensure_table

    ensure_table()  # a test's first look may come before the receiver's first delivery
    table = BATCH_NOTICES.c
    with create_session() as session:
        found = session.execute(select(BATCH_NOTICES).where(table.batch_id == batch_id).order_by(table.id))
        return [dict(row._mapping) for row in found]
