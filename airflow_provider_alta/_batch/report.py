"""How a batch ended: the small manifest a task returns, its closing line, and whether the task fails.

The manifest goes to XCom, so it stays small whatever the batch's size: counts, spend, the result files, the
first failed keys; the rows themselves are in the files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_provider_alta._batch.source import Key
from airflow_provider_alta._core.batch_outcomes import StopReason
from airflow_provider_alta._core.batch_progress import Tally, duration_text, percent
from airflow_provider_alta.exceptions import AltaBatchFailedError, AltaContractError, AltaError


@dataclass
class BatchReport:
    """Everything known when a try of a batch ends."""

    output_path: str
    total: int
    tally: Tally
    files: list[str]
    failed_keys: list[Key]
    max_failed_items: int | None
    stop_reason: StopReason | None = None
    error: AltaError | None = None
    invokes: int = 0
    queries: int = 0
    worker_seconds: float = 0.0
    reattached: int = 0
    lost: int = 0
    #: Webhook deliveries read (``None``: the batch polled), and lost invokes whose run a delivery named.
    delivered: int | None = None
    found: int = 0
    workflow_name: str | None = None
    rerun: int = 0
    done_before: int = 0
    #: What earlier tries had done and spent (this try's figures are the difference).
    tally_before: Tally = field(default_factory=Tally)
    #: What earlier tries sent as metrics: this try sends the rest, a killed try's share included.
    metrics_before: Tally = field(default_factory=Tally)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def not_started(self) -> int:
        return max(0, self.total - self.tally.done)

    def manifest(self) -> dict[str, Any]:
        """The task's return value (XCom): small, whatever the number of items."""
        return {
            "output_path": self.output_path,
            "results": self.files,
            "total": self.total,
            **self.tally.to_dict(),
            "not_started": self.not_started,
            "failed_keys": self.failed_keys,
            "complete": self.tally.done == self.total,
            "stopped_by": self.stop_reason.value if self.stop_reason is not None else None,
            "this_try": {
                "invokes": self.invokes,
                "queries": self.queries,
                "done_before": self.done_before,
                "reattached": self.reattached,
                "lost_invokes": self.lost,
                "lost_invokes_found": self.found,
                "webhook_deliveries": self.delivered,
                "rerun": self.rerun,
                "worker_seconds": round(self.worker_seconds, 3),
            },
        }

    def closing_line(self) -> str:
        t = self.tally
        done_now = t.done - self.done_before
        per_item = (self.invokes + self.queries) / done_now if done_now else 0.0
        return (
            f"Alta batch ended: {t.done:,}/{self.total:,} items done ({percent(t.done, self.total)}): "
            f"{t.succeeded:,} succeeded, {t.failed:,} runs FAILED, {t.refused:,} refused, {t.unknown:,} unknown; "
            f"{t.cost:,.4f} credits, {t.tokens:,.0f} tokens; this try: {done_now:,} items in "
            f"{duration_text(self.worker_seconds)} of worker time, {self.invokes:,} invokes and {self.queries:,} "
            f"queries ({per_item:.2f} requests per item){self._deliveries_text()}; results in {self.output_path}"
        )

    def _deliveries_text(self) -> str:
        if self.delivered is None:
            return ""
        found = f", naming the runs of {self.found:,} invokes a lost try left unanswered" if self.found else ""
        return f", {self.delivered:,} webhook deliveries{found}"

    def verdict(self) -> AltaError | None:
        """The error that fails the task, or ``None``: a stop, or more failures than ``max_failed_items``."""
        if self.error is not None:
            return self.error
        where = (
            f"the failed items are the rows of {self.output_path}/part-*.jsonl whose status is not SUCCEED "
            f"(first keys: {self.failed_keys[:10]})"
        )
        t = self.tally
        if self.max_failed_items is not None and t.failures > self.max_failed_items:
            return AltaBatchFailedError(
                f"{t.failures:,} of {self.total:,} items failed ({t.failed:,} runs FAILED, {t.refused:,} inputs "
                f"refused, {t.unknown:,} outcomes unknown), more than max_failed_items allows "
                f"({self.max_failed_items:,}); {self.not_started:,} items were not started; {where}. rerun_failed=True "
                "runs only those items again"
            )
        if self.stop_reason in (StopReason.MAX_COST, StopReason.MAX_TOKENS):
            spent = f"{t.cost:,.4f} credits" if self.stop_reason is StopReason.MAX_COST else f"{t.tokens:,.0f} tokens"
            return AltaContractError(
                f"{self.stop_reason.value}={self.settings.get(self.stop_reason.value)} reached: {spent} spent on "
                f"{t.done:,} items; the {self.not_started:,} items left were not started (runs already in flight "
                "finished). Raise the limit and clear the task to go on: the items done are kept and not paid again"
            )
        return None
