"""What the readers of the receiver (a triggerer's mailbox reader, a batch's delivery reader) share about a read
that failed: the receiver's one-word reason, and which failures in a row are worth a log line."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiohttp

#: How many failed reads in a row are logged one by one before going quiet.
FAILURES_LOGGED = 3
#: While reads keep failing, how often one more line says so.
FAILURE_REMINDER_SECONDS = 60.0


async def result_of(response: aiohttp.ClientResponse) -> str:
    """The receiver's ``result`` word of a refused read (never the body as a whole)."""
    try:
        body = await response.json(content_type=None)
    except ValueError:
        return "(no JSON answer)"
    result = body.get("result") if isinstance(body, dict) else None
    return str(result)[:40] if result else "(no result)"


class FailureStreak:
    """Failed reads in a row: the first few are logged one by one, then one a minute while they go on."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.count = 0
        self._reminded = 0.0

    def failed(self) -> bool:
        """One more failure; whether it is to be logged."""
        self.count += 1
        now = self.clock()
        if self.count > FAILURES_LOGGED and now - self._reminded < FAILURE_REMINDER_SECONDS:
            return False
        self._reminded = now
        return True

    def ended(self) -> None:
        """A read succeeded."""
        self.count = 0
