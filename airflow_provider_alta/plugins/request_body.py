"""Reading a webhook body without letting its sender choose how much memory or time it costs.

The body is read as a stream and dropped at the first byte over the limit, a declared ``Content-Length``
over the limit is refused before anything is read, and the whole read has a deadline, so a sender that
declares gigabytes, streams them chunked, or trickles a byte a second is answered and cut off.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

#: How long reading one body may take, however it is sent (8 MiB needs about 280 KB/s).
READ_TIMEOUT_SECONDS = 30.0


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


async def read_body(chunks: AsyncIterator[bytes], limit: int, timeout: float = READ_TIMEOUT_SECONDS) -> bytes:
    """The whole body of at most ``limit`` bytes, read within ``timeout`` seconds."""
    try:
        return await asyncio.wait_for(_read_at_most(chunks, limit), timeout)
    except asyncio.TimeoutError:
        raise BodyRefused(408, "too_slow", f"the body was not received within {timeout:.0f} s") from None


async def _read_at_most(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    body = bytearray()
    async for chunk in chunks:
        if len(body) + len(chunk) > limit:
            raise BodyRefused(413, "too_large", f"body over {limit} bytes")
        body += chunk
    return bytes(body)
