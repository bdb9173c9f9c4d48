"""How often to ask Alta whether a run has ended (pure policy, shared by hook and trigger).

The wait before the next query is a fraction (default 9 %) of the time the
run has been going, clamped to ``[min_interval, max_interval]``, shortened by
up to ``jitter`` so that many pollers do not march in step. A run is then
noticed at most ``max(min_interval, ratio / (1 - ratio) * duration)`` after it
ends (under 10 % of it with the default), while the number of queries grows
only with the logarithm of its duration: a one hour run costs about 80
queries, not the 720 of fixed 5 s polling.

The wait itself (the shared rate budget, failures, what to log) is
:mod:`airflow_provider_alta._core.waiting`. On top of the schedule sits the key's
shared :class:`RateBudget`: the interval is
stretched so every poller sharing the key fits in the remaining quota, and a
``Retry-After`` pauses them all.

With an ``expected_duration`` (learned from a task's earlier runs) the first
query goes out when the run is expected to end, and the adaptive schedule
takes over from there: a run of stable duration costs one to three queries.
A run that takes longer keeps the usual bound; one that suddenly takes much
less is noticed at the expected end (no schedule can spend three queries and
also catch an unforeseen early end within a few percent; the webhook can).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, replace
from typing import Any

from airflow_provider_alta._core.validation import ensure_positive_number
from airflow_provider_alta.exceptions import AltaValidationError


@dataclass(frozen=True)
class PollingSettings:
    """Knobs of the adaptive schedule; plain numbers, so they travel in trigger kwargs."""

    min_interval: float = 1.0
    max_interval: float = 300.0
    ratio: float = 0.09
    jitter: float = 0.1
    max_consecutive_failures: int = 10
    expected_duration: float | None = None

    def __post_init__(self) -> None:
        ensure_positive_number(self.expected_duration, "expected_duration", allow_none=True)
        ensure_positive_number(self.min_interval, "poll_min_interval")
        ensure_positive_number(self.max_interval, "poll_max_interval")
        ensure_positive_number(self.ratio, "poll_ratio")
        if self.max_interval < self.min_interval:
            raise AltaValidationError(
                f"poll_max_interval ({self.max_interval}) must be >= poll_min_interval ({self.min_interval})"
            )
        if not isinstance(self.jitter, (int, float)) or not 0 <= self.jitter < 1:
            raise AltaValidationError(f"poll_jitter must be a number in [0, 1), got {self.jitter!r}")
        if not isinstance(self.max_consecutive_failures, int) or self.max_consecutive_failures < 1:
            raise AltaValidationError(
                f"max_consecutive_failures must be a whole number >= 1, got {self.max_consecutive_failures!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def expected_duration(
    history: list[float], settings: PollingSettings, webhook_fallback: float | None = None
) -> float | None:
    """When to send the first query, from the execution times (seconds) of a task's recent runs.

    Polling alone: the shortest recent run, so a run as long as usual is
    noticed with one or two queries. With a webhook, polls are only the
    fallback for a lost one: one interval after the longest recent run, so
    they never race the webhook of a run as long as usual.
    """
    if not history:
        return None
    if webhook_fallback is None:
        return min(history)
    longest = max(history)
    return longest + max(webhook_fallback, settings.ratio * longest)


def settings_for_run(
    settings: PollingSettings, history: list[float], webhook_fallback: float | None = None
) -> PollingSettings:
    """One run's schedule: the fallback spacing when a webhook is expected, the expected end when known."""
    if webhook_fallback is not None:
        spacing = max(settings.min_interval, webhook_fallback)
        settings = replace(settings, min_interval=spacing, max_interval=max(settings.max_interval, spacing))
    expected = expected_duration(history, settings, webhook_fallback)
    return settings if expected is None else replace(settings, expected_duration=expected)


def adaptive_interval(elapsed: float, settings: PollingSettings, rng: random.Random | None = None) -> float:
    """The pause before the next query of a run that has been going for ``elapsed`` seconds."""
    base = min(settings.max_interval, max(settings.min_interval, settings.ratio * max(0.0, elapsed)))
    if settings.jitter:
        base *= 1.0 - settings.jitter * (rng or random).random()
    return max(base, settings.min_interval * (1.0 - settings.jitter))
