"""The sensor that waits for an Alta run started elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseSensorOperator
from airflow.sdk.bases.sensor import PokeReturnValue

from airflow_provider_alta._airflow.fail_fast import AltaWorkflowRunFailedError, classify_errors
from airflow_provider_alta._airflow.fresh_retry import FreshRetryMixin
from airflow_provider_alta._airflow.lineage import RunLineageMixin
from airflow_provider_alta._airflow.version_compat import AirflowSensorTimeout, AirflowSkipException, conf
from airflow_provider_alta._core.json_limits import has_template_syntax
from airflow_provider_alta._core.polling import PollingSettings
from airflow_provider_alta._core.validation import ensure_output_format, ensure_run_id, load_schema
from airflow_provider_alta.exceptions import AltaTimeoutError, AltaValidationError
from airflow_provider_alta.templated import Templated, rendered

# What the task needs when it runs (the finish, the triggerer's side) is imported where it runs: DAG files import
# the sensor on every parse.

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_alta._core.finish_plan import FinishContract
    from airflow_provider_alta.hooks.alta import AltaHook
    from airflow_provider_alta.models import WorkflowRun


__all__ = ["AltaWorkflowRunFailedError", "AltaWorkflowRunSensor"]


class AltaWorkflowRunSensor(FreshRetryMixin, RunLineageMixin, BaseSensorOperator):
    """Wait for an Alta workflow run to end; return its output.

    Usually downstream of ``AltaRunWorkflowOperator(wait_for_completion=False)``::

        start = AltaRunWorkflowOperator(task_id="start", input=..., wait_for_completion=False)
        wait = AltaWorkflowRunSensor(task_id="wait", workflow_run_id=start.output, deferrable=True)

    A FAILED run fails the task (or skips it with ``soft_fail=True``). On
    success the output is the task's return value and the same XCom keys as
    the operator's are pushed.

    :param workflow_run_id: the run to wait for. Templated.
    :param alta_conn_id: the connection whose key started the run.
    :param deferrable: wait in the triggerer instead of poking from a worker.
    :param output_schema: JSON Schema the output must satisfy. Templated.
    :param poll_min_interval: shortest pause between queries when deferred.
    :param poll_max_interval: longest pause between queries when deferred.
    :param poll_ratio: pause as a fraction of the run's age, when deferred.
    :param output_format: ``"value"`` or ``"json"`` (the output as JSON text),
        as on :class:`~airflow_provider_alta.operators.alta.AltaRunWorkflowOperator`.
    :param end_in_triggerer: (deferrable only) end the task in the triggerer
        when the run SUCCEEDs, with its XComs pushed, instead of resuming it
        on a worker; as on the operator, whose documentation gives the
        trade-offs.
    """

    template_fields: Sequence[str] = ("workflow_run_id", "alta_conn_id", "output_schema")
    template_fields_renderers: ClassVar[dict[str, str]] = {"output_schema": "json"}
    ui_color = "#e8f1fb"
    fresh_start = "it looks at the run again, and waits for it if it is still going"

    def __init__(
        self,
        *,
        workflow_run_id: Templated[str],
        alta_conn_id: Templated[str] = "alta_default",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        output_schema: Templated[dict[str, Any] | str | None] = None,
        poll_min_interval: float = 1.0,
        poll_max_interval: float = 300.0,
        poll_ratio: float = 0.09,
        output_format: str = "value",
        end_in_triggerer: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Template fields keep the types ``execute`` sees: Airflow renders them first.
        self.workflow_run_id = rendered(workflow_run_id)
        self.alta_conn_id = rendered(alta_conn_id)
        self.deferrable = deferrable
        self.output_schema = rendered(output_schema)
        self.output_format = ensure_output_format(output_format)
        if not isinstance(end_in_triggerer, bool):
            raise AltaValidationError(f"end_in_triggerer must be True or False, got {end_in_triggerer!r}")
        self.end_in_triggerer = end_in_triggerer
        self.polling = PollingSettings(min_interval=poll_min_interval, max_interval=poll_max_interval, ratio=poll_ratio)
        self._final_run: WorkflowRun | None = None
        if isinstance(workflow_run_id, str) and not has_template_syntax(workflow_run_id):
            ensure_run_id(workflow_run_id)
        if isinstance(output_schema, dict):
            load_schema(output_schema, "output_schema")

    @cached_property
    def hook(self) -> AltaHook:
        from airflow_provider_alta.hooks.alta import AltaHook

        return AltaHook(self.alta_conn_id)

    def _finish(self, run: WorkflowRun, context: Context, trigger_queries: int = 0) -> Any:
        from airflow_provider_alta._airflow.finishing import finish_run, queries_sent

        self._final_run = run
        return finish_run(
            run,
            self._contract(),
            context=context,
            log=self.log,
            conn_id=self.alta_conn_id,
            queries=queries_sent(self) + trigger_queries,
        )

    def _contract(self) -> FinishContract:
        """What this task promised about the end of the run (see ``_core/finish_plan``)."""
        from airflow_provider_alta._core.finish_plan import FinishContract

        return FinishContract(
            push=self.do_xcom_push,
            output_format=self.output_format,
            output_schema=load_schema(self.output_schema, "output_schema"),
            failed_error=AltaWorkflowRunFailedError,
        )

    @classify_errors
    def execute(self, context: Context) -> Any:
        self.workflow_run_id = ensure_run_id(self.workflow_run_id)
        load_schema(self.output_schema, "output_schema")
        if not self.deferrable:
            return super().execute(context)
        # One look before deferring: a run that has already ended needs no trigger, and a trigger that fires
        # at once can race the scheduler's handling of the deferral (apache/airflow#71580, #72716).
        run = self.hook.get_run(self.workflow_run_id)
        if run.is_terminal:
            return self._settle(run, context)
        from airflow_provider_alta._airflow import deferral
        from airflow_provider_alta._airflow.triggerer_finish import carried, finish_for
        from airflow_provider_alta.triggers.alta import AltaWorkflowRunTrigger

        timeout = self.timeout.total_seconds() if isinstance(self.timeout, timedelta) else self.timeout
        contract = self._contract()
        ending = finish_for(self, context, lambda: carried(contract))
        kwargs = deferral.trigger_kwargs(
            run,
            conn_id=self.alta_conn_id,
            timeout=float(timeout),
            started_at=run.start_time_ms / 1000 if run.start_time_ms else None,
            polling=self.polling,
            ending=ending,
        )
        deferral.announce_deferral(self.log, context, run, ending)
        self.defer(
            trigger=AltaWorkflowRunTrigger(**kwargs),
            **deferral.resume_at_execute_complete(context, self.workflow_run_id),
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        run = self.hook.get_run(self.workflow_run_id)
        if not run.is_terminal:
            self.log.info("Alta %s is %s", run.describe(), run.status.value)
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._finish(run, context))

    @classify_errors
    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any] | None = None,
        workflow_run_id: str | None = None,
        try_number: int | None = None,
    ) -> Any:
        """Resume after the trigger fired: the same checks and XComs as poke mode.

        ``try_number`` is the try that deferred (see :meth:`resume_execution`).
        """
        from airflow_provider_alta._airflow.finishing import queries_in_event, run_from_event

        try:
            run = run_from_event(event, workflow_run_id, fetch=self.hook.get_run)
        except AltaTimeoutError as err:
            if self.soft_fail:
                raise AirflowSkipException(str(err)) from err
            raise AirflowSensorTimeout(str(err)) from err
        return self._settle(run, context, queries_in_event(event))

    def _settle(self, run: WorkflowRun, context: Context, trigger_queries: int = 0) -> Any:
        """Finish a run outside ``BaseSensorOperator.execute``, honouring ``soft_fail`` as poke mode does."""
        try:
            return self._finish(run, context, trigger_queries)
        except AltaWorkflowRunFailedError as err:
            if self.soft_fail:
                raise AirflowSkipException(str(err)) from err
            raise
