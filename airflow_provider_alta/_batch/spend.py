"""What a batch's try spent, sent through Airflow's metrics layer, as finished single runs are
(:mod:`airflow_provider_alta._airflow.metrics`): the same counters, so dashboards summing ``alta.run.cost``
count batches too, plus the batch's own item counts. Only what earlier tries did not send: the manifest records
what was sent, so a try killed before sending leaves its share to the next."""

from __future__ import annotations

from typing import Any

from airflow_provider_alta._airflow.metrics import COST, QUERIES, TOKENS, status_metric
from airflow_provider_alta._batch.report import BatchReport
from airflow_provider_alta._core.finish_plan import XCOM_BATCH_FAILED_RUNS, XCOM_BATCH_RUNS

#: The XComs the "Alta spend" view reads from a batch's task instance (``plugins/spend_query.py``): a batch has many
#: runs, so it states their number and failures; cost and tokens are the whole batch's, every try included.
RUNS, FAILED_RUNS = XCOM_BATCH_RUNS, XCOM_BATCH_FAILED_RUNS


def spend_xcoms(report: BatchReport) -> dict[str, Any]:
    """What the latest try leaves for the spend view (a retry clears the earlier tries' XComs, so all tries)."""
    tally = report.tally
    spent: dict[str, Any] = {
        "status": "FAILED" if report.verdict() is not None else "SUCCEED",
        "total_cost": tally.cost,
        "total_tokens": tally.tokens,
        RUNS: tally.succeeded + tally.failed,
        FAILED_RUNS: tally.failed,
    }
    if report.workflow_name is not None:  # the view's "workflow" column; unknown when no run ended in this try
        spent["workflow_name"] = report.workflow_name
    return spent


#: Items a try of a batch ended, by status: ``alta.batch.items.succeed``, ``.failed``, ``.refused``, ``.unknown``.
ITEMS_PREFIX = "alta.batch.items"


def emit_batch_metrics(report: BatchReport, *, dag_id: str, task_id: str, conn_id: str, log: Any = None) -> None:
    """Send this try's counts and spend; a metrics backend that fails never fails the task."""
    try:
        from airflow_provider_alta._airflow.version_compat.stats import stats

        client = stats()
        tags = {"dag_id": dag_id, "task_id": task_id, "conn_id": conn_id}
        now, before = report.tally, report.metrics_before
        runs = {"succeed": now.succeeded - before.succeeded, "failed": now.failed - before.failed}
        for status, count in runs.items():
            if count:
                client.incr(status_metric(status), count=count, tags=tags)
        items = {**runs, "refused": now.refused - before.refused, "unknown": now.unknown - before.unknown}
        for status, count in items.items():
            if count:
                client.incr(f"{ITEMS_PREFIX}.{status}", count=count, tags=tags)
        if now.cost - before.cost:
            client.incr(COST, count=now.cost - before.cost, tags=tags)
        if now.tokens - before.tokens:
            client.incr(TOKENS, count=now.tokens - before.tokens, tags=tags)
        if report.queries:
            client.incr(QUERIES, count=report.queries, tags=tags)
    except Exception as exc:
        if log is not None:
            log.warning("Could not send the metrics of the Alta batch: %s", type(exc).__name__)
