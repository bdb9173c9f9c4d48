"""One try of a batch, from the input to the report: survey, resume, drive, sum up.

The operator builds a :class:`BatchRunner` from its checked arguments and hands it an open async hook; what
happens between is here, so the operator stays a shell and the whole engine can be driven without Airflow.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from airflow_provider_alta._batch.client import BatchClient
from airflow_provider_alta._batch.driver import BatchDriver
from airflow_provider_alta._batch.location import Location
from airflow_provider_alta._batch.report import BatchReport
from airflow_provider_alta._batch.results import CHUNK_ROWS, ResultWriter
from airflow_provider_alta._batch.source import ItemSource, survey
from airflow_provider_alta._batch.state import BatchState
from airflow_provider_alta._core.batch_arguments import failure_threshold
from airflow_provider_alta._core.batch_plan import BatchPlan, BatchSettings
from airflow_provider_alta._core.batch_progress import ProgressLog
from airflow_provider_alta._core.ratelimit import RateBudget
from airflow_provider_alta._core.waiting import OutageReport

if TYPE_CHECKING:
    from airflow_provider_alta._batch.deliveries import Deliveries


class BatchRunner:
    """A batch's try: :meth:`prepare` (no request), then :meth:`run` with a client."""

    def __init__(
        self,
        *,
        source: ItemSource,
        output: Location,
        settings: BatchSettings,
        max_failed_items: int | float | None,
        rerun_failed: bool,
        body: Callable[[int, dict[str, Any]], dict[str, Any]],
        log: Any,
        chunk_rows: int = CHUNK_ROWS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source, self.output, self.settings = source, output, settings
        self.max_failed_items, self.rerun_failed = max_failed_items, rerun_failed
        self.body, self.log, self.chunk_rows, self.clock = body, log, chunk_rows, clock
        self.started_at = time.monotonic()

    def prepare(self) -> None:
        """Read and check every item, then what earlier tries left under ``output_path``; nothing is sent."""
        self.survey = survey(self.source)
        self.settings = replace(
            self.settings, max_failed_items=failure_threshold(self.max_failed_items, self.survey.total)
        )
        self.state = BatchState(
            self.output, self.survey, key_field=self.source.key_field, source=self.source.describe()
        )
        self.resume, self.journal = self.state.open(
            retry_unknown_outcome=self.settings.retry_on_unknown_outcome, rerun_failed=self.rerun_failed
        )
        self.tally_before = copy.copy(self.resume.seen.tally)
        self.done_before = self.tally_before.done
        self.log.info(
            "Alta batch over %d items from %s into %s: %d done by earlier tries%s, %d runs of earlier tries to "
            "reattach to, %d invokes a lost try left without an answer; at most %d runs in flight",
            self.survey.total,
            self.source.describe(),
            self.output.uri,
            self.done_before,
            f" ({self.resume.rerun} failed ones to run again)" if self.resume.rerun else "",
            len(self.resume.reattach),
            len(self.resume.lost),
            self.settings.max_active_runs,
        )

    @property
    def nothing_to_do(self) -> bool:
        return self.done_before == self.survey.total

    async def run(
        self,
        client: BatchClient,
        *,
        budget: RateBudget | None,
        outage: OutageReport | None,
        deliveries: Deliveries | None = None,
    ) -> BatchReport:
        plan = BatchPlan(self.settings, budget=budget, tally=self.resume.seen.tally, outage=outage)
        results = ResultWriter(self.output, next_part=self.resume.seen.next_part, rows=self.chunk_rows)
        driver = BatchDriver(
            plan=plan,
            client=client,
            items=iter(self.source),
            resume=self.resume,
            journal=self.journal,
            results=results,
            body=self.body,
            progress=ProgressLog(self.survey.total, started_at=self.clock(), done_before=self.done_before),
            log=self.log,
            clock=self.clock,
            deliveries=deliveries,
        )
        await driver.run()
        report = self.report(files=results.files, failed_keys=driver.figures.failed_keys)
        report.stop_reason, report.error = plan.stop_reason, plan.error
        report.invokes, report.queries = client.invokes, client.queries
        report.reattached, report.lost = driver.figures.reattached, driver.figures.lost
        report.workflow_name = driver.figures.workflow_name
        if deliveries is not None:
            report.delivered, report.found = deliveries.delivered, driver.figures.found
        return report

    def report(self, *, files: list[str] | None = None, failed_keys: list[Any] | None = None) -> BatchReport:
        """What this try leaves (without a run: what earlier tries left)."""
        return BatchReport(
            output_path=self.output.uri,
            total=self.survey.total,
            tally=self.resume.seen.tally,
            files=[*self.resume.seen.files, *(files or [])],
            failed_keys=failed_keys if failed_keys is not None else list(self.resume.seen.failed_keys),
            max_failed_items=self.settings.max_failed_items,
            worker_seconds=time.monotonic() - self.started_at,
            rerun=self.resume.rerun,
            done_before=self.done_before,
            tally_before=self.tally_before,
            metrics_before=self.state.metrics_sent,
            settings=asdict(self.settings),
        )

    def finish(self, report: BatchReport) -> None:
        """Record the outcome in the manifest (complete when every item has its row)."""
        report.worker_seconds = time.monotonic() - self.started_at
        self.state.write_manifest(
            complete=report.tally.done == report.total, summary=report.manifest(), metrics_sent=report.tally
        )
