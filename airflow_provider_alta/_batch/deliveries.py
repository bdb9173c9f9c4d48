"""A batch's webhook deliveries: the item's webhook entry for each invoke, and the reads of what Alta delivered.

Each invoke names a receiver URL bound to the connection, the batch and the item (``_webhook/batch_contract.py``),
so a delivery says which item's run ended even when no answer to its invoke was heard. The receiver keeps the
deliveries in the metadata database, across tries; the batch reads them through the API server every
``check_interval`` seconds and acknowledges them once their runs are on record, so the receiver forgets them.

A failed read is logged (the first few in a row, then once a minute) and the batch carries on: its fallback
queries catch every run whose delivery it could not read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_alta._webhook.batch_contract import BatchGrant, BatchNotice, batch_webhook
from airflow_provider_alta._webhook.read_failures import FailureStreak

if TYPE_CHECKING:
    import aiohttp

    from airflow_provider_alta._webhook.batch_notice_reader import BatchNoticeReader
    from airflow_provider_alta._webhook.contract import WebhookSettings


class Deliveries:
    """One batch's webhook entries and delivery reads (see the module's docstring)."""

    def __init__(
        self,
        *,
        settings: WebhookSettings,
        secret: str | None,
        conn_type: str | None,
        conn_id: str,
        batch_id: str,
        reader: BatchNoticeReader,
        check_interval: float,
        log: Any,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings, self.secret, self.conn_type = settings, secret, conn_type
        self.conn_id, self.batch_id = conn_id, batch_id
        self.reader, self.check_interval, self.log, self.clock = reader, check_interval, log, clock
        self.expires_at = int(clock() + settings.token_lifetime)
        self.reading = False
        self.next_read = 0.0
        self.reads = 0
        self.delivered = 0
        self._failures = FailureStreak()
        self._session: aiohttp.ClientSession | None = None
        self.entry(0)  # every check (receiver set up, an ``alta`` connection with a secret) before any request

    def entry(self, index: int) -> dict[str, Any]:
        """The webhook entry of item ``index``'s invoke."""
        grant = BatchGrant(self.conn_id, self.batch_id, index, self.expires_at)
        return batch_webhook(self.settings, self.secret, self.conn_type, grant)

    def due(self, now: float) -> bool:
        return not self.reading and now >= self.next_read

    async def read(self, now: float) -> list[BatchNotice]:
        """What was delivered since the last read (nothing when the read failed: the failure is logged)."""
        import aiohttp

        self.reading = True
        try:
            if self._session is None:
                self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
            notices = await self.reader.read(self._session)
        except Exception as exc:  # any failure leaves the fallback queries in charge (logged below)
            self._failed(exc)
            return []
        finally:
            self.reading = False
            self.reads += 1
            self.next_read = self.clock() + self.check_interval
        self._failures.ended()
        self.delivered += len(notices)
        return notices

    def acknowledge(self) -> None:
        """Every delivery read so far is handled and its run on record: the next read lets the receiver forget it."""
        self.reader.acknowledge()

    async def close(self) -> None:
        """One last read carries the last acknowledgement; then the session closes."""
        try:
            if self.reader.to_forget:
                await self.read(self.clock())
        finally:
            if self._session is not None:
                await self._session.close()

    def _failed(self, exc: Exception) -> None:
        if not self._failures.failed():
            return
        self.log.warning(
            "Could not read the batch's webhook deliveries (%s: %s; %d failed read(s) in a row); its runs are "
            "queried every webhook_fallback_interval meanwhile",
            type(exc).__name__,
            exc,
            self._failures.count,
        )


def open_deliveries(operator: Any, runner: Any, config: Any, ti: Any) -> Deliveries:
    """The deliveries of the batch ``runner`` prepared, for ``operator``'s task instance ``ti`` on ``config``."""
    from airflow_provider_alta._webhook.batch_contract import batch_id_of
    from airflow_provider_alta._webhook.batch_notice_reader import BatchNoticeReader, batch_notices_url
    from airflow_provider_alta._webhook.contract import WebhookSettings

    conn_id = operator.alta_conn_id
    map_index = getattr(ti, "map_index", -1)
    batch_id = batch_id_of(
        conn_id,
        ti.dag_id,
        ti.run_id,
        ti.task_id,
        -1 if map_index is None else map_index,
        runner.survey.fingerprint,
        runner.output.uri,
    )
    return Deliveries(
        settings=WebhookSettings.from_config(),
        secret=config.webhook_secret,
        conn_type=config.conn_type,
        conn_id=conn_id,
        batch_id=batch_id,
        reader=BatchNoticeReader(batch_notices_url(), conn_id, batch_id, config.webhook_secret or ""),
        check_interval=operator.webhook_check_interval,
        log=operator.log,
    )
