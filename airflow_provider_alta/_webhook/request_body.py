"""Reading a webhook body without letting its sender choose how much memory or time it costs.

The body is read as a stream and dropped at the first byte over the limit, a declared ``Content-Length``
over the limit is refused before anything is read, and the whole read has a deadline, so a sender that
declares gigabytes, streams them chunked, or trickles a byte a second is answered and cut off. All bodies
being read at once share one :class:`BufferBudget`, so concurrent senders cannot multiply the limit.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Mapping

#: How long reading one body may take, however it is sent (8 MiB needs about 280 KB/s).
READ_TIMEOUT_SECONDS = 30.0
#: Bytes all bodies being read at once may hold: one body at the limit and room for others beside it.
BUFFER_BUDGET_BYTES = 12 * 1024 * 1024


class BufferBudget:
    """The bytes the receiver's bodies may hold in memory together; a read that finds none left is refused
    at once (429) rather than queued, so no sender can hold others waiting."""

    def __init__(self, limit: int = BUFFER_BUDGET_BYTES) -> None:
        self._free = limit
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        with self._lock:
            if size > self._free:
                return False
            self._free -= size
            return True

    def give(self, size: int) -> None:
        with self._lock:
            self._free += size


class BodyRefused(Exception):
    """The body was not read: ``status`` and ``result`` say why."""

    def __init__(self, status: int, result: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.result = result
        self.detail = detail


def check_declared_length(headers: Mapping[str, str], limit: int) -> None:
    """Refuse a body whose ``Content-Length`` is over ``limit`` (the HTTP server has already checked its
    syntax), before anything is read."""
    declared = headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise BodyRefused(413, "too_large", f"body over {limit} bytes")


async def read_body(
    chunks: AsyncIterator[bytes], limit: int, budget: BufferBudget, timeout: float = READ_TIMEOUT_SECONDS
) -> bytes:
    """The whole body of at most ``limit`` bytes, read within ``timeout`` seconds, held within ``budget``."""
    try:
        return await asyncio.wait_for(_read_at_most(chunks, limit, budget), timeout)
    except asyncio.TimeoutError:
        raise BodyRefused(408, "too_slow", f"the body was not received within {timeout:.0f} s") from None


async def _read_at_most(chunks: AsyncIterator[bytes], limit: int, budget: BufferBudget) -> bytes:
    # The chunks as they came, joined once at the end: a growing buffer would over-allocate as it grows.
    parts: list[bytes] = []
    held = 0
    try:
        async for chunk in chunks:
            if held + len(chunk) > limit:
                raise BodyRefused(413, "too_large", f"body over {limit} bytes")
            if not budget.take(len(chunk)):
                raise BodyRefused(429, "busy", "too many bodies arriving at once; retry later")
            held += len(chunk)
            parts.append(chunk)
        return b"".join(parts)
    finally:
        parts.clear()
        budget.give(held)
