"""What happens when a run has ended, for the operator and the sensor alike.

One path whatever the mode (synchronous, waited in the worker, deferred,
sensed): check the trigger's event, fail on a FAILED run, enforce the task's
contracts (output schema, cost and token limits), push the XComs and log one
closing line. Nothing here talks to Alta.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow_provider_alta import exceptions
from airflow_provider_alta._airflow.metrics import emit_run_metrics
from airflow_provider_alta._core.json_limits import as_json_text, json_problem
from airflow_provider_alta._core.validation import schema_violation
from airflow_provider_alta.exceptions import (
    AltaContractError,
    AltaError,
    AltaInvalidResponseError,
    AltaRunFailedError,
    AltaTimeoutError,
    AltaUnsupportedOutputError,
    _rebuild,
)
from airflow_provider_alta.models import RunStatus, WorkflowRun

#: XCom keys pushed besides ``return_value`` (the run's output).
XCOM_RUN_ID = "workflow_run_id"
XCOM_KEYS = (
    XCOM_RUN_ID,
    "status",
    "total_cost",
    "total_tokens",
    "workflow_execution_time_ms",
    "workflow_name",
    "workflow_version",
)

#: The XCom holding the execution times (ms) of the task's last successful runs.
XCOM_RECENT_DURATIONS = "alta_recent_execution_times_ms"
#: How many past execution times the duration-aware schedule remembers.
DURATION_HISTORY = 5

EVENT_STATUSES = ("success", "failed", "timeout", "error")
#: The trigger event's key saying the run's output was left out (the event could not carry it).
OUTPUT_WITHHELD = "output_withheld"
#: The trigger event's key counting the queries the trigger sent (for the run's metrics).
EVENT_QUERIES = "queries"
#: The ``error`` event's key holding the error's class name and facts, so the task raises the same error.
EVENT_ERROR = "error"
#: The facts an error event carries: plain JSON, never a key or a header.
_ERROR_FACTS = ("cause", "status", "code", "api_message", "endpoint", "workflow_run_id", "retry_after", "sent")
_ERROR_CLASSES = {
    name: cls
    for name, cls in vars(exceptions).items()
    if isinstance(cls, type) and issubclass(cls, AltaError) and cls.__module__ == exceptions.__name__
}


def run_from_event(
    event: Any, expected_run_id: str | None, fetch: Callable[[str], WorkflowRun] | None = None
) -> WorkflowRun:
    """Check a trigger event strictly and return the finished run it carries.

    Raises the matching typed error for ``timeout`` / ``error`` events and for
    anything malformed (events are delivered at least once, and a stale or
    foreign event must never complete a task). When the trigger left the
    output out (:data:`OUTPUT_WITHHELD`), the run is read again with ``fetch``:
    one query, instead of an event Airflow could not hand back to the task.
    """
    if not isinstance(event, dict) or event.get("status") not in EVENT_STATUSES:
        raise AltaInvalidResponseError(
            f"The task resumed with an unexpected trigger event {event!r}; expected a dict with a status "
            f"in {EVENT_STATUSES}",
            workflow_run_id=expected_run_id,
        )
    run_id = event.get("workflow_run_id")
    if expected_run_id is not None and run_id != expected_run_id:
        raise AltaInvalidResponseError(
            f"The trigger event is about run {run_id!r}, not the run this task waits for",
            workflow_run_id=expected_run_id,
        )
    message = str(event.get("message") or "")
    if event["status"] == "timeout":
        raise AltaTimeoutError(message or "Gave up waiting for the workflow run", workflow_run_id=run_id)
    if event["status"] == "error":
        raise error_from_event(event.get(EVENT_ERROR), message or "Waiting for the workflow run failed", run_id)
    # The event was decoded for this task alone: its body needs no copy (a large output would double).
    run = WorkflowRun.from_response(event.get("run"), endpoint="trigger event", copy_body=False)
    if run.workflow_run_id != run_id or not run.is_terminal:
        raise AltaInvalidResponseError(
            "The trigger event's run does not match its status or id", workflow_run_id=run_id
        )
    if event.get(OUTPUT_WITHHELD):
        if fetch is None:
            raise AltaInvalidResponseError("The trigger event left the run's output out", workflow_run_id=run_id)
        run = fetch(run.workflow_run_id)
        if not run.is_terminal:
            raise AltaInvalidResponseError(
                f"Alta reports the run {run.status.value} after its trigger saw it end", workflow_run_id=run_id
            )
    return run


def error_for_event(err: AltaError) -> dict[str, Any]:
    """What an ``error`` event says about ``err``: its class name and its facts, for :func:`error_from_event`."""
    facts = {name: getattr(err, name) for name in _ERROR_FACTS if hasattr(err, name)}
    return {"kind": type(err).__name__, **facts}


def error_from_event(error: Any, message: str, run_id: Any) -> AltaError:
    """The error the trigger met, rebuilt as its own class (so a rejected key fails fast, as it does in the worker).

    An event without a known error (a trigger of an earlier version) gives a plain :class:`AltaError`.
    """
    kind = error.get("kind") if isinstance(error, dict) else None
    cls = _ERROR_CLASSES.get(kind) if isinstance(kind, str) else None
    if cls is None or not isinstance(error.get("cause"), str):
        return AltaError(message, workflow_run_id=run_id)
    state: dict[str, Any] = {name: error.get(name) for name in _ERROR_FACTS}
    state["workflow_run_id"] = state["workflow_run_id"] or run_id
    if not issubclass(cls, exceptions.AltaTransportError):
        del state["sent"]
    return _rebuild(cls, state["cause"], state)


def event_body(run: WorkflowRun) -> tuple[dict[str, Any], str | None]:
    """The run body a trigger event carries, and why its output was left out (``None`` when it was not).

    Never the run's input: the task already has it, and an event is logged and stored in the metadata
    database. An event is handed back to the task through Airflow's serialisation, which nests it twice
    as deep and refuses what XCom refuses; an output it cannot carry is read again by the task instead.
    """
    problem = json_problem(run.output, "output", for_xcom=True) if run.status is RunStatus.SUCCEED else None
    body = run.to_dict(without_output=problem is not None)
    body.pop("input", None)
    return body, None if problem is None else str(problem)


def queries_in_event(event: Any) -> int:
    """The queries a trigger event says its trigger sent (0 for an event of an earlier version)."""
    value = event.get(EVENT_QUERIES) if isinstance(event, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def queries_sent(task: Any) -> int:
    """The queries the task's hook sent in this process (0 when it made no hook)."""
    hook = vars(task).get("hook")  # the ``cached_property``, only when it was created
    count = getattr(hook, "queries_sent", 0)
    return count if isinstance(count, int) else 0


def run_failed_error(run: WorkflowRun, error_class: type[AltaRunFailedError] = AltaRunFailedError) -> AltaError:
    detail = run.error_detail or "Alta gave no error detail"
    return error_class(
        f"Alta workflow {run.workflow_name or '(unnamed)'} run ended FAILED: {detail}",
        workflow_run_id=run.workflow_run_id,
    )


def xcom_values(run: WorkflowRun) -> dict[str, Any]:
    return {
        XCOM_RUN_ID: run.workflow_run_id,
        "status": run.status.value,
        "total_cost": run.total_cost,
        "total_tokens": run.total_tokens,
        "workflow_execution_time_ms": run.execution_time_ms,
        "workflow_name": run.workflow_name,
        "workflow_version": run.workflow_version,
    }


def finish_run(
    run: WorkflowRun,
    *,
    context: Any,
    log: Any,
    push: bool,
    output_schema: dict[str, Any] | None = None,
    max_cost: float | None = None,
    max_tokens: float | None = None,
    limits_warn_only: bool = False,
    failed_error: type[AltaRunFailedError] = AltaRunFailedError,
    output_format: str = "value",
    conn_id: str = "",
    queries: int | None = None,
) -> Any:
    """Push the run's XComs, send its metrics, enforce the contracts, and return its output.

    The output comes as JSON text with ``output_format="json"``. An output that XCom cannot carry as it is
    fails here, before Airflow pushes it: never a green task whose downstream tasks cannot read its result.
    The run id stays stored, so clearing the task reattaches. ``queries`` is what the task sent for the run.
    """
    ti = context.get("ti")
    dag_id, task_id = getattr(ti, "dag_id", ""), getattr(ti, "task_id", "")
    emit_run_metrics(run, dag_id=dag_id, task_id=task_id, conn_id=conn_id, queries=queries, log=log)
    if push:
        ti = context["ti"]
        for key, value in xcom_values(run).items():
            ti.xcom_push(key=key, value=value)
    log_closing_line(run, log)
    if run.status is RunStatus.FAILED:
        raise run_failed_error(run, failed_error)
    check_contracts(
        run,
        output_schema=output_schema,
        max_cost=max_cost,
        max_tokens=max_tokens,
        limits_warn_only=limits_warn_only,
        log=log,
    )
    return returned_output(run, output_format=output_format, push=push)


def log_closing_line(run: WorkflowRun, log: Any) -> None:
    """The one line that says how a run ended, what it cost and how many tokens it used."""
    seconds = (run.execution_time_ms or 0) / 1000
    log.info(
        "Alta %s ended %s in %.1f s: cost %s credits, %s tokens",
        run.describe(),
        run.status.value,
        seconds,
        "?" if run.total_cost is None else f"{run.total_cost:g}",
        "?" if run.total_tokens is None else f"{run.total_tokens:g}",
    )


def check_contracts(
    run: WorkflowRun,
    *,
    output_schema: dict[str, Any] | None,
    max_cost: float | None,
    max_tokens: float | None,
    limits_warn_only: bool,
    log: Any,
) -> None:
    """Raise :class:`AltaContractError` when a SUCCEEDed run breaks the task's limits or output schema.

    Pure (no request, no XCom), so the triggerer can check a run exactly as the worker would.
    """
    for name, limit, actual in (("max_cost", max_cost, run.total_cost), ("max_tokens", max_tokens, run.total_tokens)):
        if limit is not None and actual is not None and actual > limit:
            message = f"The run used {actual:g} ({name.split('_')[1]}), over {name}={limit:g}"
            if limits_warn_only:
                log.warning("%s (run %s); continuing because limits_warn_only=True", message, run.workflow_run_id)
            else:
                raise AltaContractError(message, workflow_run_id=run.workflow_run_id)
    if output_schema is not None:
        problem = schema_violation(output_schema, run.output)
        if problem:
            raise AltaContractError(
                f"The workflow's output does not match output_schema at {problem}",
                workflow_run_id=run.workflow_run_id,
            )


def returned_output(run: WorkflowRun, *, output_format: str, push: bool) -> Any:
    """What the task returns (and pushes as ``return_value``): the output, or its JSON text.

    Raises :class:`AltaUnsupportedOutputError` for an output XCom cannot carry as it is.
    """
    if output_format == "json":
        return _output_as_text(run)
    if push:
        unfit = json_problem(run.output, "output", for_xcom=True)
        if unfit is not None:
            raise AltaUnsupportedOutputError(
                f"Alta {run.describe()} SUCCEEDed, but its output cannot be pushed to XCom as it is: {unfit}. "
                "Set output_format='json' on the task to receive it as JSON text (json.loads it downstream); "
                "the run id is kept, so clearing this task then reattaches to the run instead of paying for another",
                workflow_run_id=run.workflow_run_id,
            )
    return run.output


def extended_history(recent_ms: list[float], execution_time_ms: float) -> list[float]:
    """The task's duration history (:data:`XCOM_RECENT_DURATIONS`) with one more run's execution time."""
    return [*recent_ms[-(DURATION_HISTORY - 1) :], execution_time_ms]


def _output_as_text(run: WorkflowRun) -> str:
    try:
        return as_json_text(run.output)
    except RecursionError:
        raise AltaUnsupportedOutputError(
            f"Alta {run.describe()} SUCCEEDed, but its output is nested too deeply to write even as JSON text",
            workflow_run_id=run.workflow_run_id,
        ) from None
