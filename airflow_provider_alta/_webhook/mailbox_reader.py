"""One batched webhook-mailbox reader per event loop and connection, shared by every trigger waiting there.

A trigger registers its task instance and run (:func:`watch_mailbox`) and awaits the notice that announces the
end of that run. The connection's reader sends the receiver's ``POST /alta/mailboxes`` once per interval (the
smallest one among its watches) for every registered task instance (at most 2,000 per request) and wakes the
watches whose notices arrived, so 500 waiting tasks cost one request a second instead of 500 XCom reads. The
reader reaches the API server at the Execution API's base URL (:func:`api_server_base_url`), signs
with the connection's ``webhook_secret`` (read once, and again after a refusal) and
stops when its last watch goes. A failed read is logged (the first few in a row, then once a minute) and the
next interval tries again; the triggers' polling fallback carries on meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow_provider_alta._webhook.contract import SIGNATURE_HEADER, URL_PREFIX, TaskInstanceRef, announces_end
from airflow_provider_alta._webhook.mailbox_protocol import (
    MAILBOXES_ROUTE,
    MAX_REFS,
    batch_body,
    parse_answer,
    sign_body,
)
from airflow_provider_alta._webhook.read_failures import FailureStreak, result_of

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

#: How long one batched request may take.
REQUEST_TIMEOUT_SECONDS = 10.0


class MailboxWatch:
    """One trigger's registration: its task instance, its run, how often it wants the mailbox read."""

    def __init__(self, ref: TaskInstanceRef, workflow_run_id: str, interval: float) -> None:
        self.ref = ref
        self.workflow_run_id = workflow_run_id
        self.interval = interval
        self._arrived = asyncio.Event()
        self._pending: dict[str, Any] | None = None
        self._seen: dict[str, Any] | None = None

    def offer(self, notice: dict[str, Any]) -> None:
        """Wake the trigger when ``notice`` announces the end of its run and is not the one it last got."""
        if announces_end(notice, self.workflow_run_id) and notice != self._seen:
            self._pending = self._seen = notice
            self._arrived.set()

    async def next_end(self) -> dict[str, Any]:
        """The next notice announcing the end of the run (still to be confirmed with Alta)."""
        await self._arrived.wait()
        self._arrived.clear()
        notice, self._pending = self._pending, None
        assert notice is not None
        return notice


class _Reader:
    """The reader of one connection in one event loop."""

    def __init__(self, conn_id: str, url: str) -> None:
        self.conn_id = conn_id
        self.url = url
        self.watches: dict[int, MailboxWatch] = {}
        self.requests_sent = 0
        self._secret: str | None = None
        self._failures = FailureStreak()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
        loop = asyncio.get_running_loop()
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while self.watches:
                started = loop.time()
                try:
                    await self._read_all(session)
                except Exception as exc:  # any failure is logged and the next interval retries
                    self._failed(exc)
                else:
                    if self._failures.count:
                        log.info("Webhook mailbox reads via %s work again", self.conn_id)
                    self._failures.ended()
                interval = min((watch.interval for watch in self.watches.values()), default=0.0)
                await asyncio.sleep(max(0.0, interval - (loop.time() - started)))

    async def _read_all(self, session: aiohttp.ClientSession) -> None:
        watches = list(self.watches.values())
        secret = await self._webhook_secret()
        for start in range(0, len(watches), MAX_REFS):
            chunk = watches[start : start + MAX_REFS]
            body = batch_body(self.conn_id, [watch.ref for watch in chunk])
            headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign_body(secret, body)}
            self.requests_sent += 1
            async with session.post(self.url, data=body, headers=headers) as response:
                answer = await response.json(content_type=None) if response.status == 200 else None
                if response.status != 200:
                    if response.status == 401:
                        self._secret = None  # perhaps rotated (the API server sees it within 30 s): read it again
                    result = await result_of(response)
                    raise RuntimeError(f"{self.url} answered {response.status} {result}")
            for index, notice in parse_answer(answer, len(chunk)).items():
                chunk[index].offer(notice)

    async def _webhook_secret(self) -> str:
        # Read once, and again only after a refusal: a lookup goes through the triggerer's supervisor, whose
        # channel other triggers keep busy (a trigger ending its task pushes its XComs there), and each lookup
        # would hold every waiting task's read back.
        if self._secret is not None:
            return self._secret
        from airflow_provider_alta._airflow.version_compat.hook import aget_connection
        from airflow_provider_alta._core.connection import webhook_secret_of

        secret = webhook_secret_of(self.conn_id, (await aget_connection(self.conn_id)).extra)
        if not secret:
            raise RuntimeError(f"connection {self.conn_id!r} has no webhook_secret extra to sign mailbox reads")
        self._secret = secret
        return secret

    def _failed(self, exc: Exception) -> None:
        if not self._failures.failed():
            return
        log.warning(
            "Could not read the webhook mailboxes of %d task(s) via %s (%s: %s; %d failed read(s) in a row); "
            "their triggers poll Alta meanwhile",
            len(self.watches),
            self.conn_id,
            type(exc).__name__,
            exc,
            self._failures.count,
        )


_readers: dict[tuple[asyncio.AbstractEventLoop, str], _Reader] = {}


def active_readers() -> list[tuple[str, int, int]]:
    """``(conn_id, watches, requests sent)`` of the readers running in this process."""
    return [(reader.conn_id, len(reader.watches), reader.requests_sent) for reader in _readers.values()]


def mailboxes_url() -> str:
    """Where the batched read goes: the API server's base URL, then the receiver's mount and route."""
    return api_server_base_url() + URL_PREFIX + MAILBOXES_ROUTE


def api_server_base_url() -> str:
    """The API server's root URL as this process reaches it: the Execution API's URL without ``/execution/``.

    Every release reads ``[core] execution_api_server_url`` and, when it is unset, derives it from
    ``[api] base_url`` (a relative or empty one on ``http://localhost:8080``); the triggerer's own Execution API
    channel is in-process, so the same setting the workers use tells where the API server is (3.3 also accepts
    it under ``[workers]``, which ``conf`` reads when asked for ``[core]``'s).
    """
    from airflow_provider_alta._airflow.version_compat import conf

    base_url = conf.get("api", "base_url", fallback="/") or "/"
    if base_url.startswith("/"):
        base_url = f"http://localhost:8080{base_url}"
    default = f"{base_url.rstrip('/')}/execution/"
    url = (conf.get("core", "execution_api_server_url", fallback=default) or default).rstrip("/")
    suffix = "/execution"
    return url[: -len(suffix)] if url.endswith(suffix) else url


@contextlib.asynccontextmanager
async def watch_mailbox(ref: TaskInstanceRef, workflow_run_id: str, interval: float) -> AsyncIterator[MailboxWatch]:
    """Register ``ref``'s mailbox with its connection's reader for as long as the block runs.

    Leaving the block, cancelled or not, unregisters it; the reader stops with its last watch.
    """
    loop = asyncio.get_running_loop()
    key = (loop, ref.conn_id)
    reader = _readers.get(key)
    if reader is None:
        reader = _readers[key] = _Reader(ref.conn_id, mailboxes_url())
    watch = MailboxWatch(ref, workflow_run_id, interval)
    reader.watches[id(watch)] = watch
    if reader.task is None or reader.task.done():
        reader.task = loop.create_task(reader.run(), name=f"alta-mailbox-reader-{ref.conn_id}")
    try:
        yield watch
    finally:
        reader.watches.pop(id(watch), None)
        if not reader.watches:
            _readers.pop(key, None)
            if reader.task is not None:
                reader.task.cancel()
