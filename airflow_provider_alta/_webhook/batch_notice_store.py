"""The receiver's store of batch deliveries: the provider's own table ``alta_batch_notice`` in Airflow's
metadata database.

A batch's deliveries must outlive the try that asked for them (a retry after a killed worker learns from them
the runs its dead try never heard answered), and one task may wait on thousands of runs, so they are rows of
their own, not XComs (which Airflow deletes, one request per key, when a try starts). The table is created on
first use, once per process and database, and holds one row per delivered run of an item: its connection,
batch, item, run id and status, the run body as delivered (JSON text) and when it arrived. A batch reads its
rows in id order and forgets those it has kept; rows older than the token lifetime (no token can deliver them
again, no batch still waits on them) are purged at most once an hour per process. Every call opens its own
session, so any number of API server workers can serve the receiver. Portable SQL only: SQLite, PostgreSQL
and MySQL alike.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
)

from airflow_provider_alta._webhook.batch_contract import BatchGrant
from airflow_provider_alta._webhook.contract import MAX_ID_LENGTH, WebhookSettings, steps_back
from airflow_provider_alta._webhook.mailbox_store import Delivery, MailboxStore

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

#: The table's name in the metadata database.
TABLE_NAME = "alta_batch_notice"
#: How often one process purges rows older than the token lifetime.
PURGE_INTERVAL_SECONDS = 3600.0

#: Apart from Airflow's own metadata: Airflow's migrations neither create nor drop it.
_metadata = MetaData()
BATCH_NOTICES = Table(
    TABLE_NAME,
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conn_id", String(MAX_ID_LENGTH), nullable=False),
    Column("batch_id", String(32), nullable=False),
    Column("item", BigInteger, nullable=False),
    Column("workflow_run_id", String(MAX_ID_LENGTH), nullable=False),
    Column("status", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Column("received_at", Float, nullable=False),
    # The connection is part of the key: a delivery signed by another connection (for a batch id it does not
    # own) lands beside the batch's rows, never in place of them.
    UniqueConstraint("conn_id", "batch_id", "item", "workflow_run_id", name="alta_batch_notice_run_uq"),
    Index("idx_alta_batch_notice_batch_id", "batch_id", "id"),
    Index("idx_alta_batch_notice_received_at", "received_at"),
    # Ids page a read: never handed out twice, even after the newest rows are forgotten (SQLite's plain rowid
    # would reuse them; PostgreSQL's sequences and MySQL's auto-increment do not).
    sqlite_autoincrement=True,
)

#: Tries at creating the table before a request fails (each finishes what the one before left undone).
_CREATE_ATTEMPTS = 3
_created: set[str] = set()
_created_lock = threading.Lock()
_purged_at: float | None = None
_purge_lock = threading.Lock()


def ensure_table() -> None:
    """Create the table and its indexes unless they exist: once per process and database, whichever thread asks
    first.

    Each is checked and created on its own, so a creation cut short (another process creating them at the same
    moment, a locked database) is completed by the next attempt rather than left without its indexes.
    """
    from airflow.utils.session import create_session
    from sqlalchemy.exc import SQLAlchemyError

    with create_session() as session:
        key = str(session.get_bind().engine.url)
    if key in _created:
        return
    with _created_lock:
        if key in _created:
            return
        for attempt in range(_CREATE_ATTEMPTS):
            try:
                with create_session() as session:
                    connection = session.connection()
                    BATCH_NOTICES.create(connection, checkfirst=True)
                    for index in BATCH_NOTICES.indexes:
                        index.create(connection, checkfirst=True)
                break
            except SQLAlchemyError as exc:
                if attempt + 1 == _CREATE_ATTEMPTS:
                    raise
                log.warning("Creating table %s failed (%s); trying again", TABLE_NAME, type(exc).__name__)
        _created.add(key)


def forget_created_tables() -> None:
    """Forget which databases hold the table (the next call checks again): for tests that drop it."""
    with _created_lock:
        _created.clear()


class BatchNoticeStore:
    """Reads and writes ``alta_batch_notice`` for the receiver (in the API server, which owns the database)."""

    def __init__(self, secrets: MailboxStore | None = None) -> None:
        self._secrets = secrets or MailboxStore()

    def webhook_secret(self, conn_id: str) -> str | None:
        """The ``webhook_secret`` of an ``alta`` connection, ``None`` otherwise (as single-run deliveries)."""
        return self._secrets.webhook_secret(conn_id)

    def deliver(self, grant: BatchGrant, body: dict[str, Any]) -> Delivery:
        """Keep the run ``body`` (an Alta run, already checked) delivered for ``grant``'s item.

        :attr:`~.mailbox_store.Delivery.DUPLICATE` when the same run of the item is kept with the same status,
        :attr:`~.mailbox_store.Delivery.STALE` when a later status of it is kept; a later status replaces an
        earlier one under a new id, so a reader past the old row still sees it.
        """
        from airflow.utils.session import create_session
        from sqlalchemy.exc import IntegrityError

        ensure_table()
        run_id, status = str(body["workflowRunId"]), str(body["status"])
        row = {
            "conn_id": grant.conn_id,
            "batch_id": grant.batch_id,
            "item": grant.item,
            "workflow_run_id": run_id,
            "status": status,
            "body": json.dumps(body, separators=(",", ":")),
            "received_at": time.time(),
        }
        table = BATCH_NOTICES.c
        same_run = (
            table.conn_id == grant.conn_id,
            table.batch_id == grant.batch_id,
            table.item == grant.item,
            table.workflow_run_id == run_id,
        )
        try:
            with create_session() as session:
                kept = session.execute(select(table.id, table.status).where(*same_run)).first()
                if kept is not None:
                    if kept.status == status:
                        return Delivery.DUPLICATE
                    stored = {"workflow_run_id": run_id, "status": kept.status}
                    if steps_back(stored, {"workflow_run_id": run_id, "status": status}):
                        return Delivery.STALE
                    session.execute(delete(BATCH_NOTICES).where(table.id == kept.id))
                session.execute(insert(BATCH_NOTICES).values(**row))
        except IntegrityError:  # the same run, stored by another request a moment ago (all of this rolled back)
            return Delivery.DUPLICATE
        self._maybe_purge()
        return Delivery.STORED

    def read(
        self, conn_id: str, batch_id: str, after: int, limit: int, max_bytes: int | None = None
    ) -> tuple[list[tuple[int, int, dict[str, Any]]], bool]:
        """The batch's rows with ids over ``after`` as ``(id, item, body)``, in id order, at most ``limit`` of
        them (and, with ``max_bytes``, bodies of about that many characters together, one at least), and
        whether more remain."""
        from airflow.utils.session import create_session

        ensure_table()
        table = BATCH_NOTICES.c
        where = (table.conn_id == conn_id, table.batch_id == batch_id, table.id > after)
        with create_session() as session:
            sizes = session.execute(
                select(table.id, func.length(table.body)).where(*where).order_by(table.id).limit(limit + 1)
            ).all()
            more = len(sizes) > limit
            chosen = _within(sizes[:limit], max_bytes)
            more = more or len(chosen) < min(len(sizes), limit)
            rows = _bodies(session, chosen) if chosen else []
        self._maybe_purge()
        return rows, more

    def forget(self, conn_id: str, batch_id: str, ids: Sequence[int]) -> int:
        """Delete the batch's rows ``ids`` (the ones it kept; never a row it has not read); how many went."""
        from airflow.utils.session import create_session

        if not ids:
            return 0
        ensure_table()
        table = BATCH_NOTICES.c
        with create_session() as session:
            result = session.execute(
                delete(BATCH_NOTICES).where(
                    table.conn_id == conn_id, table.batch_id == batch_id, table.id.in_(list(ids))
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def purge(self, now: float | None = None) -> int:
        """Delete every row older than the token lifetime (``[alta] webhook_token_lifetime``); how many went."""
        from airflow.utils.session import create_session

        lifetime = WebhookSettings.from_config().token_lifetime
        if not (math.isfinite(lifetime) and lifetime > 0):
            return 0  # a misconfigured lifetime refuses every grant anyway: keep the rows
        ensure_table()
        oldest = (time.time() if now is None else now) - lifetime
        with create_session() as session:
            result = session.execute(delete(BATCH_NOTICES).where(BATCH_NOTICES.c.received_at < oldest))
            return int(getattr(result, "rowcount", 0) or 0)

    def _maybe_purge(self) -> None:
        global _purged_at
        now = time.monotonic()
        with _purge_lock:
            if _purged_at is not None and now - _purged_at < PURGE_INTERVAL_SECONDS:
                return
            _purged_at = now
        self.purge()


def _within(sizes: Sequence[Any], max_bytes: int | None) -> list[int]:
    """The ids of the first rows whose bodies fit in ``max_bytes`` together (the first row always)."""
    chosen: list[int] = []
    total = 0
    for notice_id, size in sizes:
        total += int(size or 0)
        if chosen and max_bytes is not None and total > max_bytes:
            break
        chosen.append(int(notice_id))
    return chosen


def _bodies(session: Session, ids: list[int]) -> list[tuple[int, int, dict[str, Any]]]:
    table = BATCH_NOTICES.c
    found = session.execute(select(table.id, table.item, table.body).where(table.id.in_(ids)).order_by(table.id))
    return [(int(notice_id), int(item), json.loads(body)) for notice_id, item, body in found]
