"""The metrics of a finished Alta run, sent through Airflow's own metrics layer.

Whatever the deployment configured in ``[metrics]`` (StatsD, its Datadog or
InfluxDB flavour, OpenTelemetry) receives them, with Airflow's prefix
(``airflow.`` by default). One call per finished run, from the process that
finishes it: the worker today (``execute`` / ``execute_complete`` / a sensor's
poke), and a trigger that ends its task itself would call it the same way, as
it needs nothing but the run and a few names. Nothing here talks to Alta, and
nothing here raises: a metrics backend that fails never fails a task.

Counters add the run's figures, so summing a counter over a week gives that
week's credits, tokens or queries; the execution time is a timer (ms). The
status is in the counter's name too, so plain StatsD, which drops tags, still
counts each final status apart.
"""

from __future__ import annotations

import re
from typing import Any

from airflow_provider_alta.models import WorkflowRun

#: The run's ``totalCost`` (credits), added to a counter.
COST = "alta.run.cost"
#: The run's ``totalTokens``, added to a counter.
TOKENS = "alta.run.tokens"
#: The run's ``workflowExecutionTime`` (ms), as a timer.
DURATION = "alta.run.duration"
#: The queries (``/v1/workflow/query/result``) the task sent for the run, added to a counter.
QUERIES = "alta.run.queries"
#: One count per finished run, named by its final status: ``alta.run.status.succeed`` / ``.failed``.
STATUS_PREFIX = "alta.run.status"
#: The tag keys, where the backend takes tags.
TAG_KEYS = ("dag_id", "task_id", "conn_id", "workflow", "status")

#: What every backend accepts in a name and a tag value (InfluxDB-style tags refuse ``,`` and ``=``; StatsD
#: names refuse spaces and ``:``). Anything else becomes ``_``.
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-/]")
_MAX_TAG = 100


def status_metric(status: str) -> str:
    """The counter of one final status, e.g. ``alta.run.status.succeed``."""
    return f"{STATUS_PREFIX}.{_clean(status).lower()}"


def run_tags(run: WorkflowRun, *, dag_id: str, task_id: str, conn_id: str) -> dict[str, str]:
    """The tags of a run's metrics: names only, never a key, a secret, an input or an output."""
    values = {
        "dag_id": dag_id,
        "task_id": task_id,
        "conn_id": conn_id,
        "workflow": run.workflow_name or "unknown",
        "status": run.status.value,
    }
    return {key: _clean(value) for key, value in values.items()}


def emit_run_metrics(
    run: WorkflowRun, *, dag_id: str, task_id: str, conn_id: str, queries: int | None, log: Any = None
) -> None:
    """Send the metrics of one finished run; a figure Alta did not report is left out."""
    try:
        from airflow_provider_alta._airflow.version_compat.stats import stats

        client = stats()
        tags = run_tags(run, dag_id=dag_id, task_id=task_id, conn_id=conn_id)
        client.incr(status_metric(run.status.value), tags=tags)
        if run.total_cost is not None:
            client.incr(COST, count=run.total_cost, tags=tags)
        if run.total_tokens is not None:
            client.incr(TOKENS, count=run.total_tokens, tags=tags)
        if run.execution_time_ms is not None:
            client.timing(DURATION, run.execution_time_ms, tags=tags)
        if queries is not None:
            client.incr(QUERIES, count=queries, tags=tags)
    except Exception as exc:
        if log is not None:
            log.warning("Could not send the metrics of Alta run %s: %s", run.workflow_run_id, type(exc).__name__)


def _clean(value: str) -> str:
    return _UNSAFE.sub("_", str(value))[:_MAX_TAG] or "_"
