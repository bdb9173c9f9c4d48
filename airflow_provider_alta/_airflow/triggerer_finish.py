"""What a trigger needs to end its task itself when the run succeeds, with no second worker execution.

A deferred task that resumes on a worker only to push XComs waits for the
scheduler and a free worker slot, about ten seconds after the run ended. When
the run SUCCEEDs and the task's contracts hold, the trigger applies the run's
finish plan (:mod:`airflow_provider_alta._core.finish_plan`, the worker's
own): it logs the closing line, pushes the XComs, forgets the stored run id,
sends the run's metrics and ends the task with Airflow's ``TaskSuccessEvent``.
Everything else (a FAILED run, a broken contract, an output XCom cannot
carry, a timeout, an error) resumes on a worker as before, so retries,
reattaching and error messages do not change. So does every task something
listens to on the worker: Airflow runs listeners (OpenLineage's among them)
only where the task runs, and a task its trigger ends would have a START
event and never a COMPLETE one.

:class:`TriggererFinish` is the trigger kwarg that carries the task's side of
that: plain JSON, no secret. It is only built where ending in the triggerer
is safe (see :func:`why_not_in_triggerer`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from airflow_provider_alta._airflow.finishing import queries_sent
from airflow_provider_alta._core.finish_plan import FinishContract, FinishPlan
from airflow_provider_alta.exceptions import AltaValidationError


@dataclass(frozen=True)
class TriggererFinish:
    """The task instance a trigger ends, and the settings its worker would have finished it with.

    :param dag_id: the task instance's DAG.
    :param run_id: its DAG run.
    :param task_id: its task.
    :param map_index: its map index (``-1`` when not mapped).
    :param conn_id: the Alta connection, for the run's metrics.
    :param push: the task's ``do_xcom_push``.
    :param output_format: ``"value"`` or ``"json"``, as on the task.
    :param output_schema: the JSON Schema the output must satisfy, already loaded.
    :param max_cost: the task's cost limit.
    :param max_tokens: the task's token limit.
    :param limits_warn_only: only warn when a limit is exceeded.
    :param recent_durations: the task's duration history to extend (``None``: it keeps none).
    :param forget_variable: the Variable holding the run id, deleted when the task ends.
    :param queries_before: the queries the task sent before deferring, for the run's metrics.
    :param pushed_before: the XCom keys the task pushed before deferring, with their final values (each
        push here is a request the triggerer's supervisor serves in its loop: the fewer, the sooner tasks end).
    """

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    conn_id: str
    push: bool
    output_format: str = "value"
    output_schema: dict[str, Any] | None = None
    max_cost: float | None = None
    max_tokens: float | None = None
    limits_warn_only: bool = False
    recent_durations: list[float] | None = None
    forget_variable: str | None = None
    queries_before: int = 0
    pushed_before: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pushed_before": list(self.pushed_before)}

    @classmethod
    def from_dict(cls, value: Any) -> TriggererFinish:
        """The spec from trigger kwargs, refusing anything else (a trigger must fail at once, not on success)."""
        known = {f.name for f in fields(cls)}
        if not isinstance(value, dict) or not known.issuperset(value):
            unknown = sorted(set(value) - known) if isinstance(value, dict) else type(value).__name__
            raise AltaValidationError(f"finish must be a TriggererFinish as a dict; unexpected {unknown}")
        return cls(**{**value, "pushed_before": tuple(value.get("pushed_before", ()))})

    def describe(self) -> str:
        index = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}/{self.run_id}/{self.task_id}{index}"

    def contract(self) -> FinishContract:
        """The task's contract, for the run's :class:`~airflow_provider_alta._core.finish_plan.FinishPlan`."""
        return FinishContract(
            push=self.push,
            output_format=self.output_format,
            output_schema=self.output_schema,
            max_cost=self.max_cost,
            max_tokens=self.max_tokens,
            limits_warn_only=self.limits_warn_only,
            recent_durations=self.recent_durations,
            pushed_before=self.pushed_before,
        )

    async def apply(self, plan: FinishPlan) -> None:
        """Push the plan's XComs, the return value among them, and forget the stored run id: the task's end.

        The triggerer's supervisor serves each request in its own loop turn; a failure raises, and the task then
        resumes on a worker, which pushes them again.
        """
        from airflow_provider_alta._airflow import internals
        from airflow_provider_alta._airflow.version_compat.xcom import aset_xcoms

        await aset_xcoms(
            plan.with_return_value(),
            dag_id=self.dag_id,
            run_id=self.run_id,
            task_id=self.task_id,
            map_index=self.map_index,
        )
        if self.forget_variable and plan.forget_run:
            await internals.adelete_variable(self.forget_variable)


def carried(contract: FinishContract) -> dict[str, Any]:
    """The :class:`TriggererFinish` fields that carry ``contract`` (its ``push`` and ``output_format`` are the task's).

    :meth:`TriggererFinish.contract` gives it back; a FAILED run never ends in the triggerer, so its error is not
    carried.
    """
    history = contract.recent_durations
    return {
        "output_schema": contract.output_schema,
        "max_cost": contract.max_cost,
        "max_tokens": contract.max_tokens,
        "limits_warn_only": contract.limits_warn_only,
        "recent_durations": list(history) if history is not None else None,
        "pushed_before": contract.pushed_before,
    }


#: Why no task ends in the triggerer on Airflow 3.0 (logged as a warning by every task that would have).
AIRFLOW_3_0_REASON = (
    "on this Airflow (3.0) the DAG processor deactivates a DAG file's DAGs after the success callback request of "
    "a task ended in the triggerer, until it parses the file again (fixed in 3.1); set end_in_triggerer=False to "
    "silence this"
)


#: Why a task OpenLineage reports resumes on a worker (in its defer line and the line before it).
OPENLINEAGE_REASON = (
    "OpenLineage is enabled for this task, and only a worker runs its listener (the COMPLETE event, with the "
    "alta_run facet)"
)


def why_not_in_triggerer(task: Any) -> str | None:
    """Why ``task`` must resume on a worker after its run succeeds, or ``None`` when the triggerer may end it.

    Called at execute time only (it reads the deployment's OpenLineage settings), never when a DAG file is parsed.

    * OpenLineage reports the task (:func:`~.version_compat.task.openlineage_reports`): Airflow
      runs its listener where the task finishes, and the triggerer runs none. First, so that its reason is the one named
      wherever it applies (on Airflow 3.0 too, where the task would resume on a worker anyway);
    * Airflow 3.0, whose DAG processor deactivates a DAG file's DAGs after the success callback request of a
      task ended in the triggerer (:func:`~.version_compat.task.callback_parse_deactivates_dags`);
    * outlets: a task ended in the triggerer emits no asset events;
    * a mapped task downstream: the worker's push records how many items to map over;
    * ``multiple_outputs``: each key is pushed by the worker.
    """
    from airflow_provider_alta._airflow.version_compat.task import callback_parse_deactivates_dags, openlineage_reports

    if openlineage_reports(task):
        return OPENLINEAGE_REASON
    if callback_parse_deactivates_dags():
        return AIRFLOW_3_0_REASON
    if getattr(task, "outlets", None):
        return "it has outlets, and a task ended in the triggerer emits no asset events"
    mapped = getattr(task, "iter_mapped_dependants", None)
    if mapped is not None and next(iter(mapped()), None) is not None:
        return "a mapped task expands over its output, which only a worker's push records"
    if getattr(task, "multiple_outputs", False):
        return "multiple_outputs pushes one XCom per key, which only a worker does"
    return None


def may_end_in_triggerer(task: Any) -> bool:
    """Whether the trigger of ``task`` may end it: fixed by the task's settings, so every try agrees."""
    return bool(task.deferrable and task.end_in_triggerer and why_not_in_triggerer(task) is None)


@dataclass(frozen=True)
class Ending:
    """Where a deferred task ends when its run succeeds: in the triggerer (``finish``) or on a worker, and why."""

    #: What the trigger needs to end the task itself; ``None`` when the task resumes on a worker.
    finish: TriggererFinish | None
    #: Why the task resumes on a worker (``None`` when its trigger ends it).
    reason: str | None = None

    def describe(self) -> str:
        """The end of the defer line: which path the task takes, and why when it is the slower one."""
        if self.finish is not None:
            return "and ends the task when it succeeds"
        return f"then the task resumes on a worker: {self.reason}"

    def finish_kwarg(self) -> dict[str, Any] | None:
        """The trigger's ``finish`` kwarg (plain JSON)."""
        return self.finish.to_dict() if self.finish is not None else None


def finish_for(task: Any, context: Any, settings: Callable[[], dict[str, Any]]) -> Ending:
    """Where the trigger of ``task`` (the operator or the sensor) ends it, with what it needs to, or why not.

    ``settings`` gives the task's own :class:`TriggererFinish` fields (contracts, duration history, store, what
    it pushes before deferring); it is called only when the trigger may end the task. Why a task resumes on a
    worker instead is logged, so its log says which path it takes.
    """
    if not task.end_in_triggerer:
        return Ending(None, "end_in_triggerer=False")
    reason = why_not_in_triggerer(task)
    if reason is not None:
        log = task.log.warning if reason == AIRFLOW_3_0_REASON else task.log.info
        log("The task resumes on a worker after its run, not in the triggerer: %s", reason)
        return Ending(None, reason)
    ti = context["ti"]
    finish = TriggererFinish(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        map_index=ti.map_index if ti.map_index is not None else -1,
        conn_id=task.alta_conn_id,
        push=task.do_xcom_push,
        output_format=task.output_format,
        queries_before=queries_sent(task),
        **settings(),
    )
    return Ending(finish)
