"""What happens when a run has ended, on a worker: for the operator and the sensor alike.

One path whatever the mode (synchronous, waited in the worker, deferred, sensed): check the trigger's event, then
apply the run's :class:`~airflow_provider_alta._core.finish_plan.FinishPlan` (the same plan a trigger applies when
it ends its task itself): send the metrics, push the XComs, log the closing line, raise or return. Nothing here
talks to Alta.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow_provider_alta import exceptions
from airflow_provider_alta._airflow.metrics import emit_run_metrics
from airflow_provider_alta._core.finish_plan import FinishContract, FinishPlan, plan_finish
from airflow_provider_alta._core.json_limits import json_problem
from airflow_provider_alta.exceptions import (
    AltaError,
    AltaInvalidResponseError,
    AltaTimeoutError,
    _rebuild,
)
from airflow_provider_alta.models import RunStatus, WorkflowRun

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


def finish_run(
    run: WorkflowRun,
    contract: FinishContract,
    *,
    context: Any,
    log: Any,
    conn_id: str = "",
    queries: int | None = None,
    forget: Callable[[], None] | None = None,
) -> Any:
    """End the task on this worker as the run's plan says, and return its result (else raise its error).

    The metrics first (every finished run counts, FAILED ones too), then the XComs, the closing line and its
    warnings; ``forget`` drops the stored run id when the plan is done with it. ``queries`` is what the task sent
    for the run. Airflow pushes the returned value as ``return_value``.
    """
    plan = plan_finish(run, contract)
    ti = context.get("ti")
    dag_id, task_id = getattr(ti, "dag_id", ""), getattr(ti, "task_id", "")
    emit_run_metrics(run, dag_id=dag_id, task_id=task_id, conn_id=conn_id, queries=queries, log=log)
    for key, value in plan.xcoms.items():
        context["ti"].xcom_push(key=key, value=value)
    log_the_end(plan, log)
    if forget is not None and plan.forget_run:
        forget()
    if plan.error is not None:
        raise plan.error
    return plan.result


def log_the_end(plan: FinishPlan, log: Any) -> None:
    """The plan's closing line, then its warnings: the same lines wherever the task ends."""
    log.info("%s", plan.closing_line)
    for warning in plan.warnings:
        log.warning("%s", warning)
