"""How many runs a batch keeps in flight: additive increase, a measured decrease (pure, no I/O).

Alta documents no concurrency limit, but one is assumed per key, answered with 429 like the rate limit
(``shared/alta-api.md``). A 429 that says so means the server holds as many runs of the key as it allows, and
every run the batch has seen accepted and not yet ended is one of them (or ended unseen since). So the decrease
is measured, not guessed: starts pause until every invoke sent before the 429 has been answered, then the limit
becomes the number of runs accepted and still open. Halving it, as TCP does without a measurement, would leave
half the key's slots idle for minutes on a limit that is fixed. After a quiet period with no such 429, while the
batch uses its whole limit, the limit grows by one, never above ``max_active_runs``: probing for a limit that
was raised, and for the slots of runs that ended but are not yet seen ended (they count as in flight here, not
at Alta). A probe costs at most one refused request, never a paid run.
"""

from __future__ import annotations

#: Seconds without a concurrency 429 before the limit grows by one, until the batch knows its runs' pace.
QUIET_PERIOD = 15.0
#: The shortest quiet period: a batch of runs lasting a fraction of a second probes once a second at most.
MIN_QUIET_PERIOD = 1.0


class AdaptiveConcurrency:
    """The number of runs the batch may have in flight now, between 1 and ``ceiling``."""

    def __init__(self, ceiling: int, *, quiet_period: float = QUIET_PERIOD) -> None:
        self.ceiling = ceiling
        self.limit = ceiling
        self.quiet_period = quiet_period
        #: When a concurrency 429 arrived that no decrease has answered yet (starts pause meanwhile).
        self.cut_pending_since: float | None = None
        self._calm_since: float | None = None
        self.cuts = 0
        self.raises = 0

    def rejected(self, now: float) -> None:
        """A concurrency 429: no new run starts until :meth:`settle` measures the limit."""
        if self.cut_pending_since is None:
            self.cut_pending_since = now

    def settle(self, accepted_open: int, now: float) -> None:
        """Every invoke sent before the 429 is answered: the key holds ``accepted_open`` runs of this batch."""
        if self.cut_pending_since is None:
            return
        self.limit = max(1, min(self.limit, accepted_open))
        self.cut_pending_since = None
        self._calm_since = now
        self.cuts += 1

    def tick(self, in_flight: int, now: float) -> None:
        """Grow the limit by one after a quiet period in which the batch used all of it."""
        if self.cut_pending_since is not None or self.limit >= self.ceiling:
            return
        if in_flight < self.limit:
            self._calm_since = now if self._calm_since is None else self._calm_since
            return
        if self._calm_since is None:
            self._calm_since = now
        elif now - self._calm_since >= self.quiet_period:
            self.limit += 1
            self.raises += 1
            self._calm_since = now

    def next_raise_at(self) -> float | None:
        """When :meth:`tick` may next grow the limit (for the driver's wake-up), or ``None``."""
        if self.cut_pending_since is not None or self.limit >= self.ceiling or self._calm_since is None:
            return None
        return self._calm_since + self.quiet_period
