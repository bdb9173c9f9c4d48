"""One request budget per API key per process (state only, no I/O).

Every hook and trigger in a process that uses the same key reads and feeds
the same :class:`RateBudget`, so 200 deferred tasks on a free-tier key share
its quota instead of each believing it owns it. Keys are never stored: the
registry is indexed by a one-way fingerprint.

Other processes (a second triggerer, the workers' task processes) spend the
same key unseen. Every answer's ``X-RateLimit-Remaining`` counts their
requests too, so the budget compares how far the server's figure fell with
how many requests this process sent meanwhile: that is this process' share of
the key's traffic, and its pollers stand for ``pollers / share`` pollers in
all. Spacing polls for that many keeps every process together on the even
pace instead of each one spending the window at its own full rate.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

from airflow_provider_alta._core.protocol import RateLimitInfo


def key_fingerprint(base_url: str, api_key: str) -> str:
    """A stable, non-reversible label for (endpoint, key)."""
    return hashlib.sha256(f"{base_url.rstrip('/')}\n{api_key}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class BudgetSnapshot:
    """The latest known rate-limit figures for one key."""

    limit: int | None
    remaining: int | None
    reset_at: float | None
    blocked_until: float | None
    pollers: int


class RateBudget:
    """Shared rate-limit state of one API key.

    ``remaining`` is the server's last figure minus the requests this process
    sent since, so concurrent pollers see each other's spending at once.
    """

    #: Requests left untouched by polling, kept for invokes and retries.
    reserve_fraction = 0.05
    #: Requests the server must have counted in a window before this process' share of them is trusted.
    share_sample = 10
    #: The smallest share believed (a process that sent almost nothing still counts as one of 50).
    min_share = 0.02

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.limit: int | None = None
        self.remaining: int | None = None
        self.reset_at: float | None = None
        self.blocked_until: float | None = None
        self.pollers = 0
        # This window's first and latest server figures, and what this process sent after the first one.
        self._server_first: int | None = None
        self._server_latest: int | None = None
        self._sent_since_first = 0

    def snapshot(self) -> BudgetSnapshot:
        with self._lock:
            return BudgetSnapshot(self.limit, self.remaining, self.reset_at, self.blocked_until, self.pollers)

    def observe(self, info: RateLimitInfo | None) -> None:
        """Record the ``X-RateLimit-*`` figures of an answer."""
        if info is None:
            return
        with self._lock:
            if info.limit is not None:
                self.limit = info.limit
            if info.remaining is not None:
                same_window = info.reset_at is None or info.reset_at == self.reset_at
                if same_window and self.remaining is not None:
                    # Answers can arrive out of order: keep the lower figure.
                    self.remaining = min(self.remaining, info.remaining)
                else:
                    self.remaining = info.remaining
                if same_window and self._server_latest is not None:
                    self._server_latest = min(self._server_latest, info.remaining)
                else:
                    self._server_first = self._server_latest = info.remaining
                    self._sent_since_first = 0
            if info.reset_at is not None:
                self.reset_at = info.reset_at

    def block(self, seconds: float, now: float | None = None) -> None:
        """Honour a ``Retry-After``: nobody sharing the key sends before it passes."""
        now = time.time() if now is None else now
        with self._lock:
            until = now + max(0.0, seconds)
            self.blocked_until = max(self.blocked_until or 0.0, until)

    def register_poller(self) -> None:
        with self._lock:
            self.pollers += 1

    def unregister_poller(self) -> None:
        with self._lock:
            self.pollers = max(0, self.pollers - 1)

    def _roll_window(self, now: float) -> None:
        if self.reset_at is not None and now >= self.reset_at:
            # A new window began; its figures are unknown until the next answer.
            self.remaining = None
            self.reset_at = None
            self._server_first = self._server_latest = None
            self._sent_since_first = 0
        if self.blocked_until is not None and now >= self.blocked_until:
            self.blocked_until = None

    def share(self) -> float:
        """This process' share of the key's traffic in the current window (1.0 until the server has counted
        enough requests to tell)."""
        with self._lock:
            return self._share()

    def _share(self) -> float:
        if self._server_first is None or self._server_latest is None:
            return 1.0
        counted = self._server_first - self._server_latest
        if counted < self.share_sample or self._sent_since_first <= 0:
            return 1.0
        # Requests still in flight are in ours, not yet in the server's count: the share can only look larger.
        return max(self.min_share, min(1.0, self._sent_since_first / counted))

    def _reserve(self) -> int:
        return int(self.limit * self.reserve_fraction) if self.limit else 0

    def poll_spacing(self, now: float | None = None) -> float:
        """The interval each poller must keep so that all of them fit in what is left of the window."""
        now = time.time() if now is None else now
        with self._lock:
            self._roll_window(now)
            if self.remaining is None or self.reset_at is None:
                return 0.0
            usable = self.remaining - self._reserve()
            window_left = max(0.0, self.reset_at - now)
            if usable <= 0:
                return window_left
            # Fewer requests left than pollers: those that miss out wait for the new window, not beyond it
            # (``acquire`` still holds back any poll the new window cannot pay for).
            # Our pollers are this share of everyone polling on the key, in every process.
            everyone = max(1, self.pollers) / self._share()
            return window_left * min(1.0, everyone / usable)

    def acquire(self, now: float | None = None, *, for_poll: bool = True) -> float:
        """Take one request from the budget; return 0, or the seconds to wait before trying again.

        A poll never eats into the reserve; other requests only wait for a
        ``Retry-After`` or an empty window.
        """
        now = time.time() if now is None else now
        with self._lock:
            self._roll_window(now)
            if self.blocked_until is not None:
                return self.blocked_until - now
            if self.remaining is not None:
                floor = self._reserve() if for_poll else 0
                if self.remaining <= floor:
                    if self.reset_at is not None:
                        return max(0.001, self.reset_at - now)
                    if for_poll:
                        return 1.0
                self.remaining -= 1
            if self._server_first is not None:
                self._sent_since_first += 1
            return 0.0


_registry: dict[str, RateBudget] = {}
_registry_lock = threading.Lock()


def budget_for(fingerprint: str) -> RateBudget:
    """The process-wide budget of one key (see :func:`key_fingerprint`)."""
    with _registry_lock:
        budget = _registry.get(fingerprint)
        if budget is None:
            budget = _registry[fingerprint] = RateBudget()
        return budget


def reset_budgets() -> None:
    """Forget every key's figures (for tests and benchmarks)."""
    with _registry_lock:
        _registry.clear()
