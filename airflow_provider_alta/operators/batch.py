"""The operator that runs one Alta workflow over many items in one task: :class:`AltaBatchOperator`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_provider_alta._airflow.fail_fast import classify_errors
from airflow_provider_alta._core.batch_arguments import (
    ensure_key_field,
    ensure_location,
    ensure_max_failed_items,
    ensure_one_source,
    ensure_whole_number,
    input_format_for,
)
from airflow_provider_alta._core.json_limits import has_template_syntax
from airflow_provider_alta._core.polling import PollingSettings
from airflow_provider_alta._core.validation import ensure_positive_number, ensure_user_id
from airflow_provider_alta.exceptions import AltaValidationError
from airflow_provider_alta.templated import Templated, rendered

# A DAG file's parse imports only the argument checks above: the engine, the hooks and the HTTP clients are
# imported when the task runs.
if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_alta._batch.report import BatchReport
    from airflow_provider_alta._batch.runner import BatchRunner

__all__ = ["AltaBatchOperator"]


def _templated(value: Any) -> bool:
    """A value Airflow replaces before ``execute``: a template string or an ``XComArg``."""
    if isinstance(value, str):
        return has_template_syntax(value)
    return type(value).__name__.endswith("XComArg") or hasattr(value, "resolve")


class AltaBatchOperator(BaseOperator):
    """Run the connection's Alta workflow once per item, many at a time, in one task; results go to files.

    Items are the workflow's inputs (JSON objects): ``items`` (a list, or an upstream task's output) or
    ``input_path`` (a JSON Lines or CSV file, read as a stream). ``output_path`` (a folder) receives one JSON
    Lines row per item, in chunks (``part-00001.jsonl``, ...): ``key``, ``status`` (``SUCCEED``, ``FAILED``,
    ``REFUSED``, ``UNKNOWN``), ``output``, ``total_cost``, ``total_tokens``, ``workflow_run_id``, ``error``. The
    task returns a small manifest: ``output_path``, ``results`` (the files), ``total``, ``succeeded``,
    ``failed``, ``total_cost``, ``total_tokens``, the first failed keys and this try's figures.

    One paid run per item, across retries, clears and lost workers: before each invoke its intent is recorded
    under ``output_path/_alta_batch/``, and its run id as soon as Alta answers. A later try (a retry, a clear
    over the same items) skips the items done, queries the runs in flight instead of invoking again, and leaves
    an invoke a lost try sent without an answer ``UNKNOWN`` (``retry_on_unknown_outcome=True`` invokes it
    again). Items that differ from the ones recorded under ``output_path`` are refused, not mixed in. A local
    ``output_path`` survives only this machine: with a distributed executor, use object storage.

    The batch waits in the worker: one event loop, one HTTP session, up to ``max_active_runs`` runs in flight,
    polled on one schedule learned from the batch's own run durations. A 429 naming Alta's concurrency limit
    lowers the concurrency to what Alta accepted, and a quiet period raises it again; the key's rate budget
    (``X-RateLimit-*``, ``Retry-After``) is shared with every Alta task in the process.

    :param output_path: a folder, as an ``ObjectStoragePath`` or a URI (``file:///...``, ``s3://...``); one
        folder per batch (e.g. with ``{{ ds }}`` in it). Templated.
    :param items: the inputs, as a list of dicts or an upstream task's output. Not rendered as Jinja: data.
    :param input_path: a JSON Lines (``.jsonl``, ``.ndjson``) or CSV (``.csv``) file, compressed or not, as an
        ``ObjectStoragePath`` or a URI. Templated.
    :param input_format: ``"jsonl"`` or ``"csv"`` when the file's name does not tell.
    :param key_field: the input field naming each item in the results (unique); by default an item's position.
    :param alta_conn_id: an ``alta`` connection; its key selects the workflow. Templated.
    :param user_id: ``userId`` sent with every run. Templated.
    :param max_active_runs: runs in flight at once, at most.
    :param max_failed_items: failed items tolerated, as a count or a fraction of the items (``0.05``); more stop
        the batch (runs in flight finish) and fail the task. ``None``: every item is tried, the task succeeds.
    :param max_cost: credits the batch may spend: runs start only while the spend so far plus the expected cost
        of the runs in flight stays within it; then the task fails, naming what is left.
    :param max_tokens: the same, in tokens.
    :param retry_on_unknown_outcome: invoke again an item whose invoke may have started a run no answer named.
    :param rerun_failed: run again the items whose rows say ``FAILED``, ``REFUSED`` or ``UNKNOWN`` (their rows
        are replaced); the others are kept.
    :param poll_min_interval: shortest pause between two queries of one run, seconds.
    :param poll_max_interval: longest pause between two queries of one run, seconds.
    :param poll_ratio: a run's pause as a fraction of its age, once it runs longer than the batch's usual.
    :param chunk_size: rows per result file.
    :param airflow_webhook: runs end by Alta's webhook deliveries to the provider's receiver on Airflow's API server
        (``[alta] webhook_enabled``, ``webhook_base_url``, and a ``webhook_secret`` extra on the connection), one
        request per item instead of two; the deliveries also name the runs of invokes a lost try never heard
        answered. Queries only catch a lost delivery.
    :param webhook_check_interval: with ``airflow_webhook``, seconds between two reads of the deliveries (a read of
        the API server, not of Alta: short, so a slot Alta frees is used again at once).
    :param webhook_fallback_interval: with ``airflow_webhook``, seconds between a run's start (or last query) and the
        query that catches a lost delivery; an invoke a lost try left without an answer waits as long for one.
    :param confirm_webhooks: with ``airflow_webhook``, confirm each delivery with one query before taking its result
        (two requests per item): a delivery is otherwise trusted on its token, which names the connection, the batch
        and the item and is signed with the connection's ``webhook_secret``.
    """

    template_fields: Sequence[str] = ("items", "input_path", "output_path", "alta_conn_id", "user_id")
    template_fields_renderers: ClassVar[dict[str, str]] = {"items": "json"}
    ui_color = "#dbe9f7"

    def __init__(
        self,
        *,
        output_path: Templated[Any],
        items: Templated[Sequence[dict[str, Any]] | None] = None,
        input_path: Templated[Any] = None,
        input_format: str | None = None,
        key_field: str | None = None,
        alta_conn_id: Templated[str] = "alta_default",
        user_id: Templated[str | None] = None,
        max_active_runs: int = 50,
        max_failed_items: int | float | None = None,
        max_cost: float | None = None,
        max_tokens: float | None = None,
        retry_on_unknown_outcome: bool = False,
        rerun_failed: bool = False,
        poll_min_interval: float = 1.0,
        poll_max_interval: float = 60.0,
        poll_ratio: float = 0.09,
        chunk_size: int = 1000,
        airflow_webhook: bool = False,
        webhook_check_interval: float = 0.25,
        webhook_fallback_interval: float = 60.0,
        confirm_webhooks: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.items: Any = items
        self.input_path: Any = input_path
        self.output_path: Any = output_path
        self.input_format = input_format
        self.key_field = ensure_key_field(key_field)
        self.alta_conn_id = rendered(alta_conn_id)
        self.user_id = rendered(user_id)
        self.max_active_runs = ensure_whole_number(max_active_runs, "max_active_runs")
        self.max_failed_items = ensure_max_failed_items(max_failed_items)
        self.max_cost = ensure_positive_number(max_cost, "max_cost", allow_none=True)
        self.max_tokens = ensure_positive_number(max_tokens, "max_tokens", allow_none=True)
        flags = {
            "retry_on_unknown_outcome": retry_on_unknown_outcome,
            "rerun_failed": rerun_failed,
            "airflow_webhook": airflow_webhook,
            "confirm_webhooks": confirm_webhooks,
        }
        for name, flag in flags.items():
            if not isinstance(flag, bool):
                raise AltaValidationError(f"{name} must be True or False, got {flag!r}")
        self.retry_on_unknown_outcome = retry_on_unknown_outcome
        self.rerun_failed = rerun_failed
        self.airflow_webhook, self.confirm_webhooks = airflow_webhook, confirm_webhooks
        self.webhook_check_interval = ensure_positive_number(webhook_check_interval, "webhook_check_interval")
        self.webhook_fallback_interval = ensure_positive_number(webhook_fallback_interval, "webhook_fallback_interval")
        self._deliveries: Any = None
        self.polling = PollingSettings(min_interval=poll_min_interval, max_interval=poll_max_interval, ratio=poll_ratio)
        self.chunk_size = ensure_whole_number(chunk_size, "chunk_size")
        self._datasets: tuple[str | None, str | None] = (None, None)
        ensure_one_source(items, input_path)
        self._check_values(rendered=False)

    def _check_values(self, *, rendered: bool) -> None:
        """Check every templated argument that is known (before rendering, the ones without a template)."""
        for field in ("output_path", "input_path"):
            value = getattr(self, field)
            if value is not None and (rendered or not _templated(value)):
                ensure_location(value, field)
                if field == "input_path":
                    input_format_for(str(value), self.input_format)
        if self.input_format is not None:
            input_format_for("", self.input_format)
        if rendered or not _templated(self.user_id):
            ensure_user_id(self.user_id)
        if rendered and self.items is not None and not isinstance(self.items, (list, tuple)):
            raise AltaValidationError(
                f"items must be a list of input objects, got {type(self.items).__name__}; a file goes in input_path"
            )

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render the templates, but not the items: they are data (an ``XComArg`` among them is still resolved)."""
        items = self.items
        if isinstance(items, (list, tuple)):
            self.items = None
        super().render_template_fields(context, jinja_env)
        if isinstance(items, (list, tuple)):
            self.items = items

    @classify_errors
    def execute(self, context: Context) -> Any:
        self._check_values(rendered=True)
        runner = self._runner()
        source = runner.source.location
        self._datasets = (source.uri if source is not None else None, runner.output.uri)
        if self.airflow_webhook:
            from airflow_provider_alta._webhook.contract import WebhookSettings

            WebhookSettings.from_config().receiver_url()  # set up, before the items are read
        runner.prepare()
        self._warn_if_local(runner)
        report = runner.report() if runner.nothing_to_do else asyncio.run(self._drive(runner, context))
        runner.finish(report)
        self.log.info("%s", report.closing_line())
        self._tell_spend(context, report)
        error = report.verdict()
        if error is not None:
            raise error
        return report.manifest()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The input file (when the items came from one) and the output folder, for OpenLineage."""
        from airflow_provider_alta._batch.lineage import batch_lineage

        return batch_lineage(*self._datasets)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """The same datasets when the batch failed: its rows up to there are in the output folder."""
        return self.get_openlineage_facets_on_complete(task_instance)

    def _runner(self) -> BatchRunner:
        from airflow_provider_alta._batch.location import resolve
        from airflow_provider_alta._batch.runner import BatchRunner
        from airflow_provider_alta._batch.source import ItemSource
        from airflow_provider_alta._core.batch_plan import BatchSettings

        location = resolve(self.input_path, "input_path") if self.input_path is not None else None
        source = ItemSource(
            items=self.items,
            location=location,
            input_format=input_format_for(location.path, self.input_format) if location is not None else "jsonl",
            key_field=self.key_field,
        )
        settings = BatchSettings(
            max_active_runs=self.max_active_runs,
            max_cost=self.max_cost,
            max_tokens=self.max_tokens,
            retry_on_unknown_outcome=self.retry_on_unknown_outcome,
            polling=self.polling,
            webhooks=self.airflow_webhook,
            webhook_fallback=self.webhook_fallback_interval,
            confirm_webhooks=self.confirm_webhooks,
        )
        return BatchRunner(
            source=source,
            output=resolve(self.output_path, "output_path"),
            settings=settings,
            max_failed_items=self.max_failed_items,
            rerun_failed=self.rerun_failed,
            body=self._body,
            log=self.log,
            chunk_rows=self.chunk_size,
        )

    def _body(self, index: int, item: dict[str, Any]) -> dict[str, Any]:
        """The invoke body of one item (each item was checked by the runner's first pass)."""
        body: dict[str, Any] = {"input": item, "isAsync": True}
        if self.user_id is not None:
            body["userId"] = self.user_id
        if self._deliveries is not None:
            body["webhook"] = [self._deliveries.entry(index)]
        return body

    async def _drive(self, runner: BatchRunner, context: Context) -> BatchReport:
        """One event loop, one HTTP session, every run of the batch."""
        from dataclasses import replace

        from airflow_provider_alta._batch.client import HookClient
        from airflow_provider_alta._core.protocol import QUERY_PATH, join_url
        from airflow_provider_alta._core.waiting import OutageReport
        from airflow_provider_alta.hooks.alta import AltaAsyncHook, AltaHook

        # The connection is read before the loop, as a worker reads one, and handed to the async hook.
        config = AltaHook(self.alta_conn_id).config
        runner.settings = replace(runner.settings, retry=config.retry)
        hook = AltaAsyncHook(self.alta_conn_id, config=config)
        if self.airflow_webhook:
            from airflow_provider_alta._batch.deliveries import open_deliveries

            self._deliveries = open_deliveries(self, runner, config, context["ti"])
        async with hook:
            outage = OutageReport(join_url(config.base_url, QUERY_PATH))
            return await runner.run(HookClient(hook), budget=hook.budget, outage=outage, deliveries=self._deliveries)

    def on_kill(self) -> None:
        if self._datasets[1] is not None:
            self.log.warning(
                "The task was killed, but Alta has no cancel endpoint: the batch's runs in flight keep running and "
                "may still consume credits. Their run ids are recorded under %s: a retry or a clear of the task "
                "reattaches to them instead of paying again",
                self._datasets[1],
            )

    def _warn_if_local(self, runner: BatchRunner) -> None:
        from airflow_provider_alta._airflow.version_compat import conf

        executor = str(conf.get("core", "executor", fallback="") or "")
        local = {"LocalExecutor", "SequentialExecutor", "DebugExecutor", ""}
        if runner.output.local and any(name.strip() not in local for name in executor.split(",")):
            self.log.warning(
                "output_path %s is on this worker's disk, and the executor (%s) may run a retry on another "
                "machine: there the batch finds no record of its items and invokes them again, paying twice. "
                "Use object storage (s3://, gs://, ...) for output_path",
                runner.output.uri,
                executor,
            )

    def _tell_spend(self, context: Context, report: BatchReport) -> None:
        from airflow_provider_alta._batch.spend import emit_batch_metrics, spend_xcoms

        if (ti := context.get("ti")) is not None:  # the "Alta spend" view reads these
            for key, value in spend_xcoms(report).items():
                ti.xcom_push(key=key, value=value)
        emit_batch_metrics(report, dag_id=self.dag_id, task_id=self.task_id, conn_id=self.alta_conn_id, log=self.log)
