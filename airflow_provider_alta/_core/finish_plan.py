"""The end of a run, decided once: from a finished run and the task's contract, what the task pushes, returns or raises.

Pure: no Airflow, no request, no log line written. A task ends on a worker (``_airflow/finishing``) or, when its
deferred run succeeds, in the triggerer (``triggers/alta``); both apply the same :class:`FinishPlan`, so what a
downstream task reads does not depend on where the task ended. Applying it (the pushes, the log, the metrics,
forgetting the stored run id) is theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_alta._core.json_limits import as_json_text, json_problem
from airflow_provider_alta._core.validation import schema_violation
from airflow_provider_alta.exceptions import (
    AltaContractError,
    AltaError,
    AltaRunFailedError,
    AltaUnsupportedOutputError,
)
from airflow_provider_alta.models import RunStatus, WorkflowRun

#: The XCom key of a task's return value (Airflow's).
RETURN_VALUE = "return_value"
#: The XCom key of the run id (pushed before any waiting, too: the webhook receiver checks deliveries against it).
XCOM_RUN_ID = "workflow_run_id"
#: XCom keys pushed besides ``return_value`` (the run's output): the run's facts.
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
#: A batch's task instance holds many runs: it states their number and its failed runs instead of one run id.
XCOM_BATCH_RUNS, XCOM_BATCH_FAILED_RUNS = "alta_runs", "alta_failed_runs"
#: How many past execution times the duration-aware schedule remembers.
DURATION_HISTORY = 5


@dataclass(frozen=True)
class FinishContract:
    """What a task promised about the end of its run: what it pushes, the form of its result, what the run must meet.

    :param push: the task's ``do_xcom_push``: the run's facts go to XCom, and its output must fit XCom as it is.
    :param output_format: ``"value"`` (the output as it is) or ``"json"`` (the output as JSON text).
    :param output_schema: the JSON Schema the output must satisfy, already loaded.
    :param max_cost: the most credits the run may use.
    :param max_tokens: the most tokens the run may use.
    :param limits_warn_only: a limit exceeded is a warning, not a failure.
    :param recent_durations: the task's duration history, extended by a successful run (``None``: it keeps none).
    :param pushed_before: XCom keys already pushed with their final values (a deferred task pushed them before
        deferring): not pushed again.
    :param failed_error: what a FAILED run raises (the sensor's error has a name of its own).
    """

    push: bool
    output_format: str = "value"
    output_schema: dict[str, Any] | None = None
    max_cost: float | None = None
    max_tokens: float | None = None
    limits_warn_only: bool = False
    recent_durations: Sequence[float] | None = None
    pushed_before: tuple[str, ...] = ()
    failed_error: type[AltaRunFailedError] = AltaRunFailedError


@dataclass(frozen=True)
class FinishPlan:
    """What ending a task with a finished run amounts to.

    Applied in this order: push :attr:`xcoms`; log :attr:`closing_line`, then each of :attr:`warnings`; forget the
    stored run id when :attr:`forget_run`; raise :attr:`error`, or else return :attr:`result`.
    """

    #: The XComs the finish pushes itself (the run's facts and the duration history), in push order.
    xcoms: dict[str, Any]
    #: The one line that says how the run ended, what it cost and how many tokens it used.
    closing_line: str
    #: The task's return value (the output, or its JSON text), when there is no :attr:`error`.
    result: Any = None
    #: What the task fails with: a FAILED run, a broken contract, an output XCom cannot carry.
    error: AltaError | None = None
    #: What the task warns of (a limit exceeded with ``limits_warn_only``).
    warnings: tuple[str, ...] = ()
    #: Whether the stored run id is done with: the task succeeded, or its run FAILED (a retry starts a new run
    #: anyway). After a broken contract it is kept, so that clearing the task reattaches instead of paying again.
    forget_run: bool = False
    #: Whether the task pushes its return value (its ``do_xcom_push``).
    push: bool = field(default=False, repr=False)

    def with_return_value(self) -> dict[str, Any]:
        """:attr:`xcoms` and the return value as Airflow pushes it for a task that returns one.

        What a task ended where nothing returns (the triggerer) pushes: ``return_value`` too, unless the task does
        not push or returns ``None``.
        """
        if not self.push or self.result is None:
            return dict(self.xcoms)
        return {**self.xcoms, RETURN_VALUE: self.result}


def plan_finish(run: WorkflowRun, contract: FinishContract) -> FinishPlan:
    """The plan for ending a task whose run has ended (SUCCEED or FAILED), under the task's contract."""
    facts = {k: v for k, v in xcom_values(run).items() if k not in contract.pushed_before} if contract.push else {}
    line = closing_line(run)
    if run.status is RunStatus.FAILED:
        return FinishPlan(facts, line, error=run_failed_error(run, contract.failed_error), forget_run=True)
    warnings, broken = _contract_check(run, contract)
    if broken is not None:
        return FinishPlan(facts, line, error=broken, warnings=warnings)
    try:
        result = returned_output(run, output_format=contract.output_format, push=contract.push)
    except AltaUnsupportedOutputError as err:
        return FinishPlan(facts, line, error=err, warnings=warnings)
    history = contract.recent_durations if contract.push else None
    if history is not None and run.execution_time_ms:
        facts[XCOM_RECENT_DURATIONS] = extended_history(history, run.execution_time_ms)
    return FinishPlan(facts, line, result=result, warnings=warnings, forget_run=True, push=contract.push)


def xcom_values(run: WorkflowRun) -> dict[str, Any]:
    """The run's facts, by XCom key (:data:`XCOM_KEYS`)."""
    return {
        XCOM_RUN_ID: run.workflow_run_id,
        "status": run.status.value,
        "total_cost": run.total_cost,
        "total_tokens": run.total_tokens,
        "workflow_execution_time_ms": run.execution_time_ms,
        "workflow_name": run.workflow_name,
        "workflow_version": run.workflow_version,
    }


def closing_line(run: WorkflowRun) -> str:
    """The one line that says how a run ended, what it cost and how many tokens it used."""
    seconds = (run.execution_time_ms or 0) / 1000
    cost = "?" if run.total_cost is None else f"{run.total_cost:g}"
    tokens = "?" if run.total_tokens is None else f"{run.total_tokens:g}"
    return f"Alta {run.describe()} ended {run.status.value} in {seconds:.1f} s: cost {cost} credits, {tokens} tokens"


def run_failed_error(run: WorkflowRun, error_class: type[AltaRunFailedError] = AltaRunFailedError) -> AltaError:
    """The error of a FAILED run: the workflow, and whatever Alta said went wrong."""
    detail = run.error_detail or "Alta gave no error detail"
    return error_class(
        f"Alta workflow {run.workflow_name or '(unnamed)'} run ended FAILED: {detail}",
        workflow_run_id=run.workflow_run_id,
    )


def _contract_check(run: WorkflowRun, contract: FinishContract) -> tuple[tuple[str, ...], AltaContractError | None]:
    """The warnings a SUCCEEDed run gives under ``contract``, and the first limit or schema it breaks."""
    warnings: list[str] = []
    limits = (("max_cost", contract.max_cost, run.total_cost), ("max_tokens", contract.max_tokens, run.total_tokens))
    for name, limit, actual in limits:
        if limit is not None and actual is not None and actual > limit:
            message = f"The run used {actual:g} ({name.split('_')[1]}), over {name}={limit:g}"
            if not contract.limits_warn_only:
                return tuple(warnings), AltaContractError(message, workflow_run_id=run.workflow_run_id)
            warnings.append(f"{message} (run {run.workflow_run_id}); continuing because limits_warn_only=True")
    problem = schema_violation(contract.output_schema, run.output) if contract.output_schema is not None else None
    if problem:
        error = AltaContractError(
            f"The workflow's output does not match output_schema at {problem}", workflow_run_id=run.workflow_run_id
        )
        return tuple(warnings), error
    return tuple(warnings), None


def returned_output(run: WorkflowRun, *, output_format: str, push: bool) -> Any:
    """What the task returns (and pushes as ``return_value``): the output, or its JSON text.

    Raises :class:`AltaUnsupportedOutputError` for an output XCom cannot carry as it is: never a green task whose
    downstream tasks cannot read its result.
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


def extended_history(recent_ms: Sequence[float], execution_time_ms: float) -> list[float]:
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
