"""A batch's limits: what it may do (:class:`BatchSettings`), and how many runs fit in what is left to spend.

``max_cost`` / ``max_tokens`` bound the whole batch: a run starts only while what was spent plus the expected
cost of the runs in flight (the batch's average per run so far) stays within them, and until one run has said
what a run costs, one runs at a time. Pure: the figures come from the plan's :class:`Tally`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from airflow_provider_alta._core.batch_outcomes import StopReason
from airflow_provider_alta._core.batch_progress import Tally
from airflow_provider_alta._core.polling import PollingSettings
from airflow_provider_alta._core.request_retry import RetrySettings


@dataclass(frozen=True)
class BatchSettings:
    """What a batch may do; plain values, checked by the operator before any request."""

    max_active_runs: int = 50
    #: Failed items tolerated (a count); more stop the batch and fail the task.
    max_failed_items: int | None = None
    max_cost: float | None = None
    max_tokens: float | None = None
    retry_on_unknown_outcome: bool = False
    polling: PollingSettings = field(default_factory=PollingSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    #: Seconds without a concurrency 429 before the limit grows by one; ``None``: twice the batch's usual run
    #: duration (at least :data:`MIN_QUIET_PERIOD`), so the limit keeps up with the runs' pace.
    quiet_period: float | None = None
    #: The longest wait for the key's rate window; a longer one stops the batch (resumably) instead.
    quota_wait_limit: float = 300.0
    #: The quantile of the batch's run durations at which a run's first query goes out.
    first_query_quantile: float = 0.85
    #: The later quantile at which a run still going at its first query is queried again (then: adaptive polling).
    late_query_quantile: float = 0.99
    #: Runs end by webhook deliveries (``airflow_webhook``); queries only catch a lost delivery.
    webhooks: bool = False
    #: With webhooks: seconds from an invoke's answer (or a query's) to the next query of its run; also how long an
    #: invoke a lost try left without an answer waits for its delivery before it ends ``UNKNOWN``.
    webhook_fallback: float = 60.0
    #: With webhooks: confirm each delivery with one query before the item ends (a request more per item).
    confirm_webhooks: bool = False


def runs_within_limits(settings: BatchSettings, tally: Tally, concurrency: int) -> tuple[int, StopReason | None]:
    """The runs that may be in flight now: ``concurrency``, within the credits and tokens left; and which of those
    two limits binds, when one does."""
    capacity, bound = concurrency, None
    for reason, limit, spent, runs in (
        (StopReason.MAX_COST, settings.max_cost, tally.cost, tally.costed_runs),
        (StopReason.MAX_TOKENS, settings.max_tokens, tally.tokens, tally.tokened_runs),
    ):
        if limit is None:
            continue
        if runs == 0:
            room = 1  # one run at a time until one says what a run costs
        elif spent > 0:
            room = math.floor((limit - spent) / (spent / runs))
        else:
            continue
        if room < capacity:
            capacity, bound = room, reason
    return capacity, bound


def limit_reached(settings: BatchSettings, tally: Tally) -> StopReason | None:
    """The limit the batch's figures so far reached, if any: more failures than tolerated, or the spend."""
    if settings.max_failed_items is not None and tally.failures > settings.max_failed_items:
        return StopReason.MAX_FAILED_ITEMS
    if settings.max_cost is not None and tally.cost >= settings.max_cost:
        return StopReason.MAX_COST
    if settings.max_tokens is not None and tally.tokens >= settings.max_tokens:
        return StopReason.MAX_TOKENS
    return None
