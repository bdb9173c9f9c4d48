"""Webhook secrets per connection id, kept for a short time in the API server process.

Without it every request, authenticated or not, costs a connection lookup for an id the caller chose: a SQL
query, or with a secrets backend (Vault, AWS Secrets Manager) a remote and possibly billed call, and the
time it takes tells which ids exist. Misses are kept too, so repeated bad requests cost nothing but a dict
lookup. Misses are bounded in number (a caller cycling through made-up ids only evicts other misses), and
lookups of ids not in the cache are bounded in rate: beyond it, the caller is asked to come back later.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

#: How long an answer is kept. A rotated secret is picked up within this time.
SECRET_TTL_SECONDS = 30.0
#: How many unknown (or secretless) connection ids are remembered at once.
MAX_MISSES = 4096
#: Lookups of ids not in the cache, per second (and the burst allowed at once).
LOOKUPS_PER_SECOND = 20.0


class LookupsExhausted(Exception):
    """Too many lookups of uncached connection ids right now (answered 429)."""


class SecretCache:
    """A time-bounded cache in front of ``load`` (conn id → secret or ``None``), safe across threads."""

    def __init__(
        self,
        load: Callable[[str], str | None],
        *,
        ttl: float = SECRET_TTL_SECONDS,
        max_misses: int = MAX_MISSES,
        lookups_per_second: float = LOOKUPS_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._ttl = ttl
        self._max_misses = max_misses
        self._rate = lookups_per_second
        self._clock = clock
        self._lock = threading.Lock()
        self._hits: dict[str, tuple[float, str]] = {}
        self._misses: OrderedDict[str, float] = OrderedDict()
        self._tokens = lookups_per_second
        self._refilled = clock()

    def cached(self, conn_id: str) -> tuple[bool, str | None]:
        """``(True, secret or None)`` when a fresh answer is kept; ``(False, None)`` otherwise. No I/O."""
        now = self._clock()
        with self._lock:
            hit = self._hits.get(conn_id)
            if hit is not None and now - hit[0] < self._ttl:
                return True, hit[1]
            missed = self._misses.get(conn_id)
            if missed is not None and now - missed < self._ttl:
                return True, None
        return False, None

    def reserve_lookup(self) -> None:
        """Take one lookup from the rate budget, or raise :class:`LookupsExhausted`."""
        now = self._clock()
        with self._lock:
            self._tokens = min(self._rate, self._tokens + (now - self._refilled) * self._rate)
            self._refilled = now
            if self._tokens < 1:
                raise LookupsExhausted
            self._tokens -= 1

    def load(self, conn_id: str) -> str | None:
        """Look ``conn_id`` up (blocking: run it off the event loop) and remember the answer."""
        secret = self._load(conn_id)
        now = self._clock()
        with self._lock:
            if secret is not None:
                self._misses.pop(conn_id, None)
                self._hits[conn_id] = (now, secret)
                return secret
            self._hits.pop(conn_id, None)
            self._misses.pop(conn_id, None)
            self._misses[conn_id] = now
            while len(self._misses) > self._max_misses:
                self._misses.popitem(last=False)
        return None
