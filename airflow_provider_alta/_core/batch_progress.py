"""A batch's running figures and the lines that tell them (pure: the caller passes the clock).

A batch of 100,000 items must not log 100,000 lines, nor stay silent for an hour: a progress line goes out at
most every ``every`` seconds, or when another ``step`` (5 %) of the items is done, whichever comes first; the
closing line sums the batch up.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

#: Seconds between two progress lines, at most one line per this interval unless a 5 % step is crossed.
PROGRESS_EVERY = 10.0
#: The fraction of the items after which a progress line is due, however recent the last one.
PROGRESS_STEP = 0.05


class ItemStatus(str, enum.Enum):
    """How an item of a batch ended, as its result line says."""

    #: The run ended SUCCEED (Alta's word); its output is in the result.
    SUCCEED = "SUCCEED"
    #: The run ended FAILED; the error says what Alta said about it.
    FAILED = "FAILED"
    #: Alta refused the input (400, 413, 422): no run started, nothing was paid.
    REFUSED = "REFUSED"
    #: Whether a run started, or how it ended, is unknown (an invoke without an answer, a run Alta no longer
    #: knows): it is never invoked again unless ``retry_on_unknown_outcome=True``, as it may have been paid.
    UNKNOWN = "UNKNOWN"


@dataclass
class Tally:
    """What a batch has done so far: item counts by status, credits and tokens."""

    succeeded: int = 0
    failed: int = 0
    refused: int = 0
    unknown: int = 0
    cost: float = 0.0
    tokens: float = 0.0
    #: Runs whose answer gave a cost: what the cost of a run still going is estimated from.
    costed_runs: int = 0
    tokened_runs: int = 0

    @property
    def failures(self) -> int:
        """Items that did not succeed, whatever the reason."""
        return self.failed + self.refused + self.unknown

    @property
    def done(self) -> int:
        return self.succeeded + self.failures

    def add(self, status: ItemStatus, cost: float | None = None, tokens: float | None = None) -> None:
        if status is ItemStatus.SUCCEED:
            self.succeeded += 1
        elif status is ItemStatus.FAILED:
            self.failed += 1
        elif status is ItemStatus.REFUSED:
            self.refused += 1
        else:
            self.unknown += 1
        if cost is not None:
            self.cost += cost
            self.costed_runs += 1
        if tokens is not None:
            self.tokens += tokens
            self.tokened_runs += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "succeeded": self.succeeded,
            "failed": self.failures,
            "failed_runs": self.failed,
            "refused": self.refused,
            "unknown": self.unknown,
            "total_cost": round(self.cost, 6),
            "total_tokens": self.tokens,
        }


class ProgressLog:
    """When a progress line is due, and what it says.

    ``done_before`` items were done by earlier tries: they count toward done/total, not toward this try's rate.
    """

    def __init__(
        self,
        total: int,
        *,
        started_at: float,
        done_before: int = 0,
        every: float = PROGRESS_EVERY,
        step: float = PROGRESS_STEP,
    ) -> None:
        self.total = total
        self.started_at = started_at
        self.done_before = done_before
        self.every = every
        self.step_items = max(1, int(total * step))
        self._last_at = started_at
        self._last_done = done_before

    def due(self, done: int, now: float) -> bool:
        """Whether a line is due now (and, when it is, the next one is counted from here)."""
        if done == self._last_done:
            return False
        if now - self._last_at < self.every and done - self._last_done < self.step_items:
            return False
        self._last_at, self._last_done = now, done
        return True

    def rate(self, done: int, now: float) -> float:
        """Items per second in this try."""
        elapsed = now - self.started_at
        return (done - self.done_before) / elapsed if elapsed > 0 else 0.0

    def line(self, tally: Tally, *, in_flight: int, limit: int, now: float) -> str:
        done = tally.done
        rate = self.rate(done, now)
        left = max(0, self.total - done)
        eta = f"ETA {duration_text(left / rate)}" if rate > 0 and left else "ETA unknown" if left else "all done"
        return (
            f"Alta batch: {done:,}/{self.total:,} items done ({percent(done, self.total)}), "
            f"{tally.failures:,} failed, {in_flight} in flight (limit {limit}), "
            f"{tally.cost:,.2f} credits, {tally.tokens:,.0f} tokens so far, {rate:,.1f} items/s, {eta}"
        )


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "100 %"


def duration_text(seconds: float) -> str:
    """``42 s``, ``3 min 20 s``, ``2 h 05 min``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
