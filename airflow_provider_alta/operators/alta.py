"""The operator that runs an Alta workflow as one Airflow task.

It is the conductor: check the arguments, reattach to an earlier try's run or invoke, then wait here, defer to the
triggerer, or finish. Each step's rules live in a room of their own: the arguments (``operators/_arguments``), the
reattach protocol (``_airflow/reattach``), the defer setup (``_airflow/deferral``), the duration history
(``_airflow/duration_history``) and the end of a run (``_core/finish_plan``, applied by ``_airflow/finishing``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from airflow.sdk import BaseOperator

from airflow_provider_alta._airflow.fail_fast import classify_errors
from airflow_provider_alta._airflow.fresh_retry import FreshRetryMixin
from airflow_provider_alta._airflow.lineage import RunLineageMixin
from airflow_provider_alta._airflow.version_compat import conf
from airflow_provider_alta._core.json_limits import AltaLiteral, has_template_syntax
from airflow_provider_alta._core.polling import PollingSettings
from airflow_provider_alta._core.validation import ensure_output_format, load_schema
from airflow_provider_alta.links.alta import AltaRunLink
from airflow_provider_alta.operators._arguments import (
    SETTINGS,
    check_settings,
    check_values,
    checked_input,
    describe_mode,
    masked_webhooks,
)
from airflow_provider_alta.templated import Templated, rendered

# Only what a DAG file's parse needs is imported above (Airflow parses DAG files all the time): what the task
# needs when it runs (the finish, the run-id store, the webhook, the triggerer's side) is imported where it runs.
if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_alta._airflow.reattach import DurableInvoke
    from airflow_provider_alta._core.finish_plan import FinishContract
    from airflow_provider_alta.hooks.alta import AltaHook
    from airflow_provider_alta.models import WorkflowRun

__all__ = ["AltaLiteral", "AltaRunWorkflowOperator"]


class AltaRunWorkflowOperator(FreshRetryMixin, RunLineageMixin, BaseOperator):
    """Run the Alta workflow selected by a connection's API key, and return its output.

    Modes:

    * default: one synchronous invoke; the task returns the run's ``output``.
      The fewest requests and the lowest latency for short workflows.
    * ``run_async=True``: an async invoke, then the worker waits, polling on
      an adaptive schedule.
    * ``deferrable=True``: an async invoke on the worker, then the wait moves
      to the triggerer, freeing the worker slot.
    * ``wait_for_completion=False``: an async invoke; the task returns the run
      id at once, for :class:`~airflow_provider_alta.sensors.alta.AltaWorkflowRunSensor`.

    The run id is pushed to XCom (``workflow_run_id``) and stored in the task's
    state store before any waiting, so a retry reattaches to a live run or
    takes a finished run's result instead of paying for a second run
    (``durable=False`` turns that off). Alta has no cancel endpoint: a killed
    task leaves its run going, and says so.

    :param input: the workflow's Start-node parameters: a dict, a JSON string,
        or an XComArg resolving to one. Templated: strings with template syntax
        (``{{``, ``{%``, ``{#``) are rendered, every other string is sent exactly
        as written; wrap text in :class:`AltaLiteral` to send ``{{ … }}`` as is.
    :param alta_conn_id: an ``alta`` connection; its key selects the workflow.
    :param user_id: optional end-user label sent as ``userId``. Templated.
    :param run_async: invoke asynchronously and wait in the worker.
    :param wait_for_completion: ``False`` returns the run id without waiting.
    :param deferrable: wait in the triggerer (implies an async invoke).
    :param timeout: seconds to wait for the run (``None``: no limit). Separate
        from Airflow's ``execution_timeout``, which bounds the whole task.
    :param poll_min_interval: shortest pause between queries, seconds.
    :param poll_max_interval: longest pause between queries, seconds.
    :param poll_ratio: the pause as a fraction of the run's age so far.
    :param webhooks: up to 5 ``{"method", "url", "headers"}`` callbacks for the
        async run. Header values are masked as secrets. Templated.
    :param input_schema: JSON Schema (dict or ``.json`` path) the input must
        satisfy before anything is sent. Templated.
    :param output_schema: JSON Schema the output must satisfy, else the task
        fails. Templated.
    :param max_cost: fail when the run's ``totalCost`` exceeds it.
    :param max_tokens: fail when the run's ``totalTokens`` exceeds it.
    :param limits_warn_only: only log a warning when a limit is exceeded.
    :param durable: reattach to the stored run on a retry.
    :param airflow_webhook: (deferrable only) have Alta call the provider's
        webhook receiver on Airflow's API server when the run ends, so the
        trigger finishes about a second later with one confirming query.
        Needs ``[alta] webhook_enabled`` and ``webhook_base_url``, and a
        ``webhook_secret`` extra on the connection. Counts toward the 5
        webhooks of a run.
    :param webhook_fallback_interval: with ``airflow_webhook``, the shortest
        pause between the fallback queries that catch a lost webhook.
    :param webhook_check_interval: with ``airflow_webhook``, seconds between
        two reads of the task's mailbox (no Alta request): in a triggerer one
        batched read covers every waiting task of the connection, at the
        smallest interval among them.
    :param duration_aware: remember the execution times of the task's last
        successful runs (XCom ``alta_recent_execution_times_ms``) and send the
        first query when the run is expected to end.
    :param output_format: ``"value"`` (default) returns the output as it is;
        ``"json"`` returns it as JSON text, for outputs XCom cannot carry
        (Airflow's reserved keys, lone surrogates, more than 64 levels of
        nesting): downstream tasks ``json.loads`` it and get the exact value.
    :param end_in_triggerer: (deferrable only) when the run SUCCEEDs and the
        task's contracts hold, the trigger pushes the XComs and ends the task
        itself, about a second after the run, instead of waiting for a worker
        slot to resume it (ten seconds or more). The trade-offs: no listener
        runs for a task ended in the triggerer, and ``on_success_callback``
        runs in the DAG processor. A task OpenLineage reports (its listener
        sends the COMPLETE event only from a worker), with outlets, with a
        mapped task expanding over its output, or with ``multiple_outputs``
        always resumes on a worker, as does every run that fails, breaks a
        contract or times out; the defer line says why. ``False`` always
        resumes.
    :param retry_on_unknown_outcome: let Airflow retry the task when the
        invoke may have started a run that no answer confirmed
        (:class:`~airflow_provider_alta.exceptions.AltaInvokeOutcomeUnknownError`),
        and let a try start a new run when Alta does not know the run a
        previous try started (404,
        :class:`~airflow_provider_alta.exceptions.AltaRunUnknownError`).
        Off by default, as either may start a second paid run. Errors a
        retry cannot fix (a bad setting, a rejected key, a refused input, a
        broken contract) always fail the task without retrying.
    """

    template_fields: Sequence[str] = ("input", "user_id", "webhooks", "input_schema", "output_schema", "alta_conn_id")
    template_fields_renderers: ClassVar[dict[str, str]] = dict.fromkeys(
        ("input", "webhooks", "input_schema", "output_schema"), "json"
    )
    ui_color = "#e8f1fb"
    operator_extra_links = (AltaRunLink(),)
    fresh_start = "it reattaches to the run when the run is still going or succeeded"

    def __init__(
        self,
        *,
        input: Templated[Mapping[str, Any] | str],
        alta_conn_id: Templated[str] = "alta_default",
        user_id: Templated[str | None] = None,
        run_async: bool = False,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        timeout: float | timedelta | None = None,
        poll_min_interval: float = 1.0,
        poll_max_interval: float = 300.0,
        poll_ratio: float = 0.09,
        webhooks: Templated[Sequence[Templated[Mapping[str, Any]]] | None] = None,
        input_schema: Templated[dict[str, Any] | str | None] = None,
        output_schema: Templated[dict[str, Any] | str | None] = None,
        max_cost: float | None = None,
        max_tokens: float | None = None,
        limits_warn_only: bool = False,
        durable: bool = True,
        airflow_webhook: bool = False,
        webhook_fallback_interval: float = 60.0,
        webhook_check_interval: float = 1.0,
        duration_aware: bool = True,
        output_format: str = "value",
        retry_on_unknown_outcome: bool = False,
        end_in_triggerer: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Template fields keep the types ``execute`` sees: Airflow renders them first. The input and the webhooks are
        # what the user gave until they are checked (a JSON string is read then, nested XComArgs are resolved).
        self.input: Any = input
        self.alta_conn_id = rendered(alta_conn_id)
        self.user_id = rendered(user_id)
        self.run_async = run_async
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.timeout = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        self.webhooks: Any = webhooks
        self.input_schema = rendered(input_schema)
        self.output_schema = rendered(output_schema)
        self.max_cost = max_cost
        self.max_tokens = max_tokens
        self.limits_warn_only = limits_warn_only
        self.durable = durable
        self.airflow_webhook = airflow_webhook
        self.webhook_fallback_interval = webhook_fallback_interval
        self.webhook_check_interval = webhook_check_interval
        self.duration_aware = duration_aware
        self.output_format = ensure_output_format(output_format)
        self.retry_on_unknown_outcome = retry_on_unknown_outcome
        self.end_in_triggerer = end_in_triggerer
        self.polling = PollingSettings(min_interval=poll_min_interval, max_interval=poll_max_interval, ratio=poll_ratio)
        self._run_id: str | None = None
        self._final_run: WorkflowRun | None = None
        self._rendered_webhooks: Any = None
        self._recent_ms: list[float] | None = None
        check_settings({name: getattr(self, name) for name in SETTINGS})
        check_values(self, rendered=False)

    # -- arguments (checked in ``operators/_arguments``) ---------------------
    @property
    def asynchronous(self) -> bool:
        """Whether the invoke is asynchronous (every mode but the default one)."""
        return self.run_async or self.deferrable or not self.wait_for_completion

    @property
    def mode(self) -> str:
        return describe_mode(self.run_async, self.deferrable, self.wait_for_completion)

    @property
    def _schema_dir(self) -> Path | None:
        fileloc = getattr(self.dag, "fileloc", None) if self.has_dag() else None
        return Path(fileloc).parent if fileloc else None

    def render_template(
        self, content: Any, context: Context, jinja_env: Any = None, seen_oids: set[int] | None = None
    ) -> Any:
        """Render only strings with template syntax; send every other string exactly as written.

        Jinja normalises text it renders (``\\r\\n`` to ``\\n``, a trailing newline dropped), which would
        silently change a prompt. An :class:`AltaLiteral` is never rendered. Airflow calls this for every
        template field and, recursively, for every value inside one.
        """
        if isinstance(content, str) and not has_template_syntax(content):
            return str(content)
        return super().render_template(content, context, jinja_env, seen_oids)

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)
        # Before Airflow stores the rendered fields: an input it cannot store fails here, naming its JSON path.
        self.input = checked_input(self.input, rendered=True)
        # Airflow stores the webhooks with their header values masked; the invoke uses the rendered ones kept here.
        self._rendered_webhooks = self.webhooks
        self.webhooks = masked_webhooks(self.webhooks)

    # -- execution -----------------------------------------------------------
    @cached_property
    def hook(self) -> AltaHook:
        from airflow_provider_alta.hooks.alta import AltaHook

        return AltaHook(self.alta_conn_id)

    @classify_errors
    def execute(self, context: Context) -> Any:
        from airflow_provider_alta._airflow.deferral import open_mailbox, receiver_webhook, webhook_already_in
        from airflow_provider_alta._airflow.duration_history import schedule_for_run
        from airflow_provider_alta._core.finish_plan import XCOM_RUN_ID
        from airflow_provider_alta.operators._arguments import checked_invoke

        ti = context["ti"]
        webhooks = checked_invoke(  # every check before the first request
            self,
            self._rendered_webhooks if self._rendered_webhooks is not None else self.webhooks,
            (lambda: receiver_webhook(self.hook.config, self.alta_conn_id, ti)) if self.airflow_webhook else None,
        )
        # The schedule: the fallback spacing with a webhook, the expected end when earlier runs tell it.
        history = self._recent_durations(context) if self.duration_aware and self.asynchronous else []
        fallback = self.webhook_fallback_interval if self.airflow_webhook else None
        polling = schedule_for_run(self.polling, history, fallback, self.log)
        if self.airflow_webhook:
            open_mailbox(ti, self.alta_conn_id)
        run = self._reattach_or_invoke(context, webhooks)
        self._run_id = run.workflow_run_id
        if self.do_xcom_push or self.airflow_webhook:
            # The webhook receiver checks deliveries against this id.
            ti.xcom_push(key=XCOM_RUN_ID, value=run.workflow_run_id)
        if not self.wait_for_completion:
            self._durable(context).forget()
            return run.workflow_run_id
        if not run.is_terminal and self.airflow_webhook:
            run = webhook_already_in(ti, run, self.hook.get_run, self.log)
        if not run.is_terminal:
            started_at = run.start_time_ms / 1000 if run.start_time_ms else time.time()
            if self.deferrable:
                self._defer(run, started_at, polling, context)
            run = self.hook.wait_for_run(
                run.workflow_run_id, timeout=self.timeout, polling=polling, started_at=started_at, initial=run
            )
        return self._finish(run, context)

    def _reattach_or_invoke(self, context: Context, webhooks: list[dict[str, Any]] | None) -> WorkflowRun:
        """Reuse the run a previous try started when it is live or succeeded; else invoke."""
        return self._durable(context).reattach_or_invoke(
            self.input, user_id=self.user_id, webhooks=webhooks, try_number=context["ti"].try_number
        )

    def _durable(self, context: Context) -> DurableInvoke:
        """This try's reattach protocol (``_airflow/reattach``), on the task's store unless ``durable=False``."""
        from airflow_provider_alta._airflow.reattach import DurableInvoke, task_store
        from airflow_provider_alta._airflow.triggerer_finish import may_end_in_triggerer

        return DurableInvoke(
            self.hook,
            task_store(context, trigger_forgets=may_end_in_triggerer(self)) if self.durable else None,
            self.log,
            asynchronous=self.asynchronous,
            retry_on_unknown_outcome=self.retry_on_unknown_outcome,
            conn_id=self.alta_conn_id,
            mode=self.mode,
        )

    def _recent_durations(self, context: Context) -> list[float]:
        """Execution times (ms) of the task's last successful runs, read once (see ``_airflow/duration_history``)."""
        from airflow_provider_alta._airflow.duration_history import recent_durations

        if self._recent_ms is None:
            self._recent_ms = recent_durations(context["ti"])
        return self._recent_ms

    def _defer(self, run: WorkflowRun, started_at: float, polling: PollingSettings, context: Context) -> NoReturn:
        """Hand the wait to the triggerer, and say where the task ends when the run succeeds (``_airflow/deferral``)."""
        from airflow_provider_alta._airflow import deferral
        from airflow_provider_alta._airflow.triggerer_finish import finish_for
        from airflow_provider_alta.triggers.alta import AltaWorkflowRunTrigger

        ti = context["ti"]

        def settings() -> dict[str, Any]:  # asked only when the trigger may end the task
            pushed = deferral.push_final_facts(ti, run) if self.do_xcom_push else ()
            return deferral.finish_settings(self._contract(context), self._durable(context).store, pushed)

        ending = finish_for(self, context, settings)
        kwargs = deferral.trigger_kwargs(
            run,
            conn_id=self.alta_conn_id,
            timeout=self.timeout,
            started_at=started_at,
            polling=polling,
            ending=ending,
            mailbox=deferral.task_instance_ref(self.alta_conn_id, ti) if self.airflow_webhook else None,
            mailbox_interval=self.webhook_check_interval,
        )
        deferral.announce_deferral(self.log, context, run, ending)
        self.defer(
            trigger=AltaWorkflowRunTrigger(**kwargs),
            **deferral.resume_at_execute_complete(context, run.workflow_run_id),
        )

    @classify_errors
    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any] | None = None,
        workflow_run_id: str | None = None,
        try_number: int | None = None,
    ) -> Any:
        """Resume after the trigger fired: check the event strictly and finish like the other modes.

        ``try_number`` is the try that deferred (see :meth:`resume_execution`).
        """
        from airflow_provider_alta._airflow.finishing import queries_in_event, run_from_event

        run = run_from_event(event, workflow_run_id, fetch=self.hook.get_run)
        self._run_id = run.workflow_run_id
        return self._finish(run, context, trigger_queries=queries_in_event(event))

    def _finish(self, run: WorkflowRun, context: Context, trigger_queries: int = 0) -> Any:
        from airflow_provider_alta._airflow.finishing import finish_run, queries_sent

        self._final_run = run
        return finish_run(
            run,
            self._contract(context),
            context=context,
            log=self.log,
            conn_id=self.alta_conn_id,
            queries=queries_sent(self) + trigger_queries,
            forget=self._durable(context).forget,
        )

    def _contract(self, context: Context) -> FinishContract:
        """What this task promised about the end of its run (see ``_core/finish_plan``)."""
        from airflow_provider_alta._core.finish_plan import FinishContract

        keeps_history = self.duration_aware and self.asynchronous and self.do_xcom_push
        return FinishContract(
            push=self.do_xcom_push,
            output_format=self.output_format,
            output_schema=load_schema(self.output_schema, "output_schema", self._schema_dir),
            max_cost=self.max_cost,
            max_tokens=self.max_tokens,
            limits_warn_only=self.limits_warn_only,
            recent_durations=self._recent_durations(context) if keeps_history else None,
        )

    def on_kill(self) -> None:
        if self._run_id:
            self.log.warning(
                "The task was killed, but Alta has no cancel endpoint: workflow run %s keeps running remotely "
                "and may still consume credits",
                self._run_id,
            )
