"""When a batch queries each of its runs (pure, no I/O): one schedule for all of them.

A batch learns how long its runs take as they end (their spread, not only their mean), so a run's first query
goes out when a high quantile of those durations has passed since its invoke was answered (the run started
before that answer): a batch of runs of stable length costs about one query per run. A run still going then is
queried once more when nearly every run so far had ended (a later quantile), not a whole polling interval
later: with spread-out durations the few runs that outlast the first query free their slots as soon as they
end. Only a run that outlasts both is queried on the adaptive schedule of
:mod:`airflow_provider_alta._core.polling`. Runs wait in one heap ordered by their next query, so the driver
asks once for every run that is due instead of keeping one loop per run.
"""

from __future__ import annotations

import heapq
import random
from collections import deque

from airflow_provider_alta._core.polling import PollingSettings, adaptive_interval
from airflow_provider_alta.models import WorkflowRun


def run_seconds(run: WorkflowRun) -> float | None:
    """How long a finished run took, by the server's clock (its start and end), else by its execution time.

    The server's start and end are wall-clock times, so an emulator running faster than its workflow's own
    time (``time_scale``) is measured as it runs.
    """
    if run.start_time_ms is not None and run.end_time_ms is not None and run.end_time_ms >= run.start_time_ms:
        return (run.end_time_ms - run.start_time_ms) / 1000
    return run.execution_time_ms / 1000 if run.execution_time_ms is not None else None


class DurationEstimate:
    """When a run of this batch has probably ended: a high quantile of the durations of its runs so far, and a
    later one by which nearly every run had ended."""

    def __init__(self, quantile: float, keep: int = 101, *, late_quantile: float = 0.99) -> None:
        self.quantile = quantile
        self.late_quantile = max(quantile, late_quantile)
        self._recent: deque[float] = deque(maxlen=keep)
        self._expected: float | None = None
        self._latest: float | None = None
        self._stale = 0

    def observe(self, run: WorkflowRun) -> None:
        seconds = run_seconds(run)
        if seconds is not None:
            self._recent.append(seconds)
            self._stale += 1

    def expected(self) -> float | None:
        """The quantile, recomputed every tenth run once twenty are known (every run before)."""
        if not self._recent:
            return None
        if self._expected is None or self._stale >= 10 or len(self._recent) < 20:
            ordered = sorted(self._recent)
            self._expected = ordered[min(len(ordered) - 1, int(self.quantile * len(ordered)))]
            self._latest = ordered[min(len(ordered) - 1, int(self.late_quantile * len(ordered)))]
            self._stale = 0
        return self._expected

    def latest(self) -> float | None:
        """The late quantile (recomputed with :meth:`expected`): when a run still going at its first query is
        queried again."""
        return self._latest if self.expected() is not None else None


def next_query_at(
    *,
    now: float,
    sent_at: float,
    accepted_at: float,
    first: bool,
    expected: float | None,
    polling: PollingSettings,
    rng: random.Random,
    latest: float | None = None,
) -> float:
    """When to query a run next: at its expected end first, then once more at the late quantile (``latest``) if
    that is still ahead, then on the adaptive schedule."""
    if first and expected is not None:
        return accepted_at + expected
    elapsed = now - sent_at
    if expected is not None and elapsed < expected:
        return sent_at + expected
    if latest is not None and now < accepted_at + latest:
        return accepted_at + latest
    return now + adaptive_interval(elapsed, polling, rng)


class DueQueue:
    """Item indexes ordered by when they are due; a later :meth:`push` of an index outdates its earlier entries
    (the caller tells which entry is current)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int]] = []
        self._seq = 0

    def push(self, index: int, due: float) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, index))

    def peek(self) -> tuple[float, int] | None:
        """The earliest entry as ``(due, index)``, or ``None``."""
        return (self._heap[0][0], self._heap[0][2]) if self._heap else None

    def pop(self) -> None:
        heapq.heappop(self._heap)

    def __len__(self) -> int:
        return len(self._heap)
