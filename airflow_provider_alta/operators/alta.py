"""The operator that runs an Alta workflow as one Airflow task."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from airflow.sdk import BaseOperator

from airflow_provider_alta._airflow.fail_fast import classify_errors
from airflow_provider_alta._airflow.fresh_retry import FreshRetryMixin
from airflow_provider_alta._airflow.lineage import RunLineageMixin
from airflow_provider_alta._airflow.version_compat import conf
from airflow_provider_alta._core.json_limits import (
    MAX_DEPTH,
    AltaLiteral,
    Problem,
    depth_of,
    has_template_syntax,
    json_problem,
)
from airflow_provider_alta._core.polling import PollingSettings
from airflow_provider_alta._core.validation import (
    build_invoke_body,
    ensure_json_object,
    ensure_output_format,
    ensure_positive_number,
    ensure_user_id,
    load_schema,
    normalize_webhooks,
    not_carried,
)
from airflow_provider_alta.exceptions import (
    AltaError,
    AltaInvokeOutcomeUnknownError,
    AltaNotFoundError,
    AltaRunUnknownError,
    AltaValidationError,
)
from airflow_provider_alta.links.alta import AltaRunLink
from airflow_provider_alta.templated import Templated, rendered

# Only what a DAG file's parse needs is imported above (Airflow parses DAG files all the time): what the task
# needs when it runs (the finish, the run-id store, the webhook, the triggerer's side) is imported where it runs.
if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_alta._airflow.run_id_store import RunIdStore
    from airflow_provider_alta._airflow.triggerer_finish import Ending
    from airflow_provider_alta._webhook.contract import TaskInstanceRef
    from airflow_provider_alta.hooks.alta import AltaHook
    from airflow_provider_alta.models import WorkflowRun

__all__ = ["AltaLiteral", "AltaRunWorkflowOperator"]

#: The key of the run id in the task state store (Airflow 3.3+; see :func:`run_id_store.run_id_store`).
STATE_KEY = "alta_workflow_run_id"
#: Kept in the durable store while a synchronous invoke is open (Alta names a synchronous run only when it ends).
SYNC_INVOKE_MARK = "synchronous-invoke-sent-at:"
#: How many duration histories of its task's instances a mapped task instance pools (each holds up to five runs).
HISTORY_POOL = 20


def _is_unrendered(value: Any) -> bool:
    """A value Airflow will still replace before ``execute``: a template or XComArg, at any depth.

    Iterative, so an input nested thousands of levels deep reaches validation (and its clear error) instead of
    failing the DAG's import with a ``RecursionError``.
    """
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if has_template_syntax(node):
                return True
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
        elif type(node).__name__.endswith("XComArg") or hasattr(node, "resolve"):
            return True
    return False


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

    template_fields: Sequence[str] = (
        "input",
        "user_id",
        "webhooks",
        "input_schema",
        "output_schema",
        "alta_conn_id",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "input": "json",
        "webhooks": "json",
        "input_schema": "json",
        "output_schema": "json",
    }
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
        self._check_settings()
        self._check_values(rendered=False)

    # -- validation ----------------------------------------------------------
    def _check_settings(self) -> None:
        flags = ("run_async", "wait_for_completion", "deferrable", "durable", "limits_warn_only")
        for name in (*flags, "airflow_webhook", "duration_aware", "retry_on_unknown_outcome", "end_in_triggerer"):
            if not isinstance(getattr(self, name), bool):
                raise AltaValidationError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.deferrable and not self.wait_for_completion:
            raise AltaValidationError(
                "deferrable=True needs wait_for_completion=True; to start a run and wait elsewhere, use "
                "wait_for_completion=False here and a deferrable AltaWorkflowRunSensor downstream"
            )
        if self.airflow_webhook and not self.deferrable:
            raise AltaValidationError(
                "airflow_webhook=True needs deferrable=True: the triggerer is what the webhook wakes up"
            )
        ensure_positive_number(self.webhook_fallback_interval, "webhook_fallback_interval")
        ensure_positive_number(self.webhook_check_interval, "webhook_check_interval")
        ensure_positive_number(self.timeout, "timeout", allow_none=True)
        ensure_positive_number(self.max_cost, "max_cost", allow_none=True, allow_zero=True)
        ensure_positive_number(self.max_tokens, "max_tokens", allow_none=True, allow_zero=True)

    @property
    def asynchronous(self) -> bool:
        """Whether the invoke is asynchronous (every mode but the default one)."""
        return self.run_async or self.deferrable or not self.wait_for_completion

    @property
    def mode(self) -> str:
        if not self.wait_for_completion:
            return "async, not waiting"
        if self.deferrable:
            return "async, deferred to the triggerer"
        return "async, waiting in the worker" if self.run_async else "synchronous"

    def _schema_dir(self) -> Path | None:
        fileloc = getattr(self.dag, "fileloc", None) if self.has_dag() else None
        return Path(fileloc).parent if fileloc else None

    def _check_input(self, *, rendered: bool) -> None:
        """Check the input when it is known (a JSON object string becomes the dict it holds)."""
        if not rendered and _is_unrendered(self.input) and depth_of(self.input, MAX_DEPTH) > MAX_DEPTH:
            # Rendering keeps the nesting (and Airflow's renderer recurses): too deep is known already.
            raise not_carried(json_problem(self.input, "input") or Problem("input", "nested too deeply"))
        if rendered or not _is_unrendered(self.input):
            if isinstance(self.input, str):
                try:
                    self.input = json.loads(self.input)
                except RecursionError:
                    raise AltaValidationError(
                        f"input is a JSON string nested too deeply to read; at most {MAX_DEPTH} levels are carried"
                    ) from None
                except ValueError:
                    raise AltaValidationError(
                        "input is a string that is not JSON; pass a dict or a JSON object string"
                    ) from None
            ensure_json_object(self.input, "input", for_xcom=True)

    def _check_values(self, *, rendered: bool) -> None:
        """Check every argument that is already known; after rendering, all of them."""
        self._check_input(rendered=rendered)
        if (rendered or not _is_unrendered(self.webhooks)) and self.webhooks is not None:
            if not self.asynchronous:
                raise AltaValidationError(
                    "webhooks are only delivered for asynchronous runs; set run_async=True, deferrable=True "
                    "or wait_for_completion=False"
                )
            hooks = normalize_webhooks(self.webhooks) or []
            if self.airflow_webhook and len(hooks) >= 5:
                raise AltaValidationError(
                    f"webhooks has {len(hooks)} entries and airflow_webhook=True adds one; Alta accepts at most 5"
                )
        for field in ("input_schema", "output_schema"):
            value = getattr(self, field)
            if rendered or not _is_unrendered(value):
                load_schema(value, field, self._schema_dir())
        if rendered or not _is_unrendered(self.user_id):
            ensure_user_id(self.user_id)

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
        self._check_input(rendered=True)
        # Mask webhook header values before Airflow stores the rendered fields.
        from airflow.sdk.log import mask_secret

        for hook in self.webhooks or []:
            if isinstance(hook, dict) and isinstance(hook.get("headers"), dict):
                for value in hook["headers"].values():
                    if isinstance(value, str) and value:
                        mask_secret(value)
        # Airflow 3.0 stores (and logs) rendered fields unredacted: it gets header values that are already masked,
        # and the invoke uses the rendered ones kept here.
        self._rendered_webhooks = self.webhooks
        self.webhooks = _masked_headers(self.webhooks)

    # -- execution -----------------------------------------------------------
    @cached_property
    def hook(self) -> AltaHook:
        from airflow_provider_alta.hooks.alta import AltaHook

        return AltaHook(self.alta_conn_id)

    def _validate_before_send(self, context: Context) -> list[dict[str, Any]] | None:
        """Every check before the first request: arguments, schemas, the invoke body itself.

        Returns the webhooks to send: the user's, plus the receiver's with ``airflow_webhook``.
        """
        from airflow_provider_alta._webhook.contract import SIGNATURE_HEADER, WebhookSettings, airflow_webhook

        self._check_values(rendered=True)
        schema = load_schema(self.input_schema, "input_schema", self._schema_dir())
        if schema is not None:
            from airflow_provider_alta._airflow.finishing import schema_violation

            problem = schema_violation(schema, self.input)
            if problem:
                raise AltaValidationError(f"input does not match input_schema at {problem}; nothing was sent")
        webhooks = self._rendered_webhooks if self._rendered_webhooks is not None else self.webhooks
        if self.airflow_webhook:
            from airflow.sdk.log import mask_secret

            config = self.hook.config
            settings = WebhookSettings.from_config()
            grant = settings.grant(_ref(self, context), context["ti"].try_number)
            receiver = airflow_webhook(settings, config.webhook_secret, grant, config.conn_type)
            mask_secret(receiver["headers"][SIGNATURE_HEADER])
            webhooks = [*(normalize_webhooks(webhooks) or []), receiver]
        build_invoke_body(self.input, user_id=self.user_id, is_async=self.asynchronous, webhooks=webhooks)
        return webhooks

    @classify_errors
    def execute(self, context: Context) -> Any:
        from airflow_provider_alta._airflow.finishing import XCOM_RUN_ID
        from airflow_provider_alta._webhook.contract import MAILBOX_KEY, empty_mailbox

        webhooks = self._validate_before_send(context)
        polling = self._polling_for(context)
        if self.airflow_webhook:
            # An empty mailbox, so the triggerer's frequent reads find a value instead of logging 404s; it names
            # the connection, so the receiver takes only that connection's tokens for this task.
            context["ti"].xcom_push(key=MAILBOX_KEY, value=empty_mailbox(self.alta_conn_id))
        run = self._reattach_or_invoke(context, webhooks)
        self._run_id = run.workflow_run_id
        if self.do_xcom_push or self.airflow_webhook:
            # The webhook receiver checks deliveries against this id.
            context["ti"].xcom_push(key=XCOM_RUN_ID, value=run.workflow_run_id)
        if not self.wait_for_completion:
            self._forget_run(context)
            return run.workflow_run_id
        if not run.is_terminal and self.airflow_webhook:
            run = self._webhook_already_in(context, run)
        if not run.is_terminal:
            started_at = run.start_time_ms / 1000 if run.start_time_ms else time.time()
            if self.deferrable:
                self._defer(run, started_at, polling, context)
            run = self.hook.wait_for_run(
                run.workflow_run_id,
                timeout=self.timeout,
                polling=polling,
                started_at=started_at,
                initial=run,
            )
        return self._finish(run, context)

    def _polling_for(self, context: Context) -> PollingSettings:
        """The schedule of this run: the fallback spacing with a webhook, the expected end when known."""
        from airflow_provider_alta._core.polling import settings_for_run

        history = self._recent_durations(context) if self.duration_aware and self.asynchronous else []
        fallback = self.webhook_fallback_interval if self.airflow_webhook else None
        polling = settings_for_run(self.polling, [ms / 1000 for ms in history], fallback)
        if polling.expected_duration is not None:
            self.log.info(
                "Earlier runs took %.1f to %.1f s: first query after %.1f s",
                min(history) / 1000,
                max(history) / 1000,
                polling.expected_duration,
            )
        return polling

    def _recent_durations(self, context: Context) -> list[float]:
        """Execution times (ms) of the task's last successful runs, from its own XCom history (read once).

        A mapped task's instances run one workflow over different inputs, and an instance's map index names no
        input from one DAG run to the next: a mapped instance pools the histories its task's instances pushed.
        """
        from airflow_provider_alta._airflow.finishing import XCOM_RECENT_DURATIONS
        from airflow_provider_alta._airflow.version_compat.xcom import earlier_xcoms, pull_latest_xcom

        if self._recent_ms is not None:
            return self._recent_ms
        ti = context["ti"]
        found = earlier_xcoms(ti, XCOM_RECENT_DURATIONS, limit=HISTORY_POOL)
        if found is None or (found and ti.map_index in (None, -1)):
            values = pull_latest_xcom(ti, XCOM_RECENT_DURATIONS)
        else:
            values = [v for history in found if isinstance(history, list) for v in history]
        self._recent_ms = [
            float(v)
            for v in (values if isinstance(values, list) else [])
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
        ]
        return self._recent_ms

    def _webhook_already_in(self, context: Context, run: WorkflowRun) -> WorkflowRun:
        """A webhook that arrived before the deferral: confirm it now and skip the triggerer."""
        from airflow_provider_alta._webhook.contract import MAILBOX_KEY, announces_end

        ti = context["ti"]
        notice = ti.xcom_pull(task_ids=ti.task_id, key=MAILBOX_KEY, map_indexes=ti.map_index)
        if not announces_end(notice, run.workflow_run_id):
            return run
        confirmed = self.hook.get_run(run.workflow_run_id)
        self.log.info("The webhook arrived before deferring; Alta confirms %s", confirmed.status.value)
        return confirmed

    def _reattach_or_invoke(self, context: Context, webhooks: list[dict[str, Any]] | None) -> WorkflowRun:
        """Reuse the run a previous try started when it is live or succeeded; else invoke."""
        from airflow_provider_alta.models import RunStatus

        store = self._store(context) if self.durable else None
        # A first try has no earlier run to reattach to (and the lookup would log a 404 before Airflow 3.3).
        stored = store.get() if store is not None and context["ti"].try_number > 1 else None
        if store is not None and stored and stored.startswith(SYNC_INVOKE_MARK):
            self._after_a_lost_synchronous_invoke(stored, store)
        elif store is not None and stored:
            try:
                previous = self.hook.get_run(stored)
            except AltaNotFoundError as err:
                self._after_an_unknown_stored_run(stored, err, store)
            else:
                if previous.status is not RunStatus.FAILED:
                    self.log.info(
                        "Reattaching to Alta %s from a previous try (status %s); no new run started",
                        previous.describe(),
                        previous.status.value,
                    )
                    return previous
                self.log.warning("The run %s of a previous try FAILED; starting a new run", stored)
        if self.asynchronous:
            self.log.info("Invoking the Alta workflow of connection %r (%s)", self.alta_conn_id, self.mode)
        else:
            self.log.info(
                "Invoking the Alta workflow of connection %r synchronously: one request that lasts as long as the run",
                self.alta_conn_id,
            )
        if store is not None and not self.asynchronous:
            # Alta names a synchronous run only when it ends: if this worker is lost meanwhile, the mark tells the
            # retry that a paid run may exist that nobody can find.
            store.set(f"{SYNC_INVOKE_MARK}{datetime.now(timezone.utc).isoformat(timespec='seconds')}")
        try:
            run = self.hook.invoke_workflow(
                self.input, user_id=self.user_id, is_async=self.asynchronous, webhooks=webhooks
            )
        except AltaInvokeOutcomeUnknownError as err:
            # An answer that named its run but could not be read (e.g. nested too deeply): a retry must find it.
            if store is not None and err.workflow_run_id:
                self._keep_run_id(store, err.workflow_run_id)
            raise
        except AltaError:
            if store is not None and not self.asynchronous:
                store.clear()  # any other Alta error means no run started: a retry may invoke
            raise
        if self.asynchronous:  # a synchronous run has ended by now: finishing it logs the one closing line
            self.log.info("Alta started %s (status %s)", run.describe(), run.status.value)
        if store is not None:
            self._keep_run_id(store, run.workflow_run_id)
        return run

    def _after_a_lost_synchronous_invoke(self, mark: str, store: RunIdStore) -> None:
        """A previous try was lost while its synchronous invoke was open: refuse to pay twice, unless allowed."""
        since = mark.removeprefix(SYNC_INVOKE_MARK)
        if not self.retry_on_unknown_outcome:
            store.clear()  # this try decides; clearing the task afterwards is the user's choice of a new run
            raise AltaInvokeOutcomeUnknownError(
                f"A previous try of this task was lost during its synchronous invoke (sent at {since}); Alta names "
                "a synchronous run only when it ends, so that run, which may have been paid for, cannot be found "
                "and this try does not start a second one. run_async=True or deferrable=True get the run's id at "
                "once, so a retry after a lost worker reattaches to it"
            )
        self.log.warning(
            "A previous try was lost during its synchronous invoke (sent at %s); its run cannot be found: starting "
            "a new run (retry_on_unknown_outcome=True)",
            since,
        )

    def _after_an_unknown_stored_run(self, stored: str, err: AltaNotFoundError, store: RunIdStore) -> None:
        """Alta answers 404 for the run a previous try started: refuse to start another in its place, unless allowed."""
        if not self.retry_on_unknown_outcome:
            store.clear()  # this try decides; clearing the task afterwards is the user's choice of a new run
            raise AltaRunUnknownError(
                f"Alta does not know the run {stored} that a previous try of this task started (it may have expired "
                "from Alta's history, or the connection now holds another key), so whether it ran and what it cost "
                "is unknown; this try does not start a new paid run in its place",
                **err.api_facts(),
                workflow_run_id=stored,
            )
        self.log.warning(
            "The run %s of a previous try is unknown to Alta (%s); starting a new run (retry_on_unknown_outcome=True)",
            stored,
            err.code or f"HTTP {err.status}",
        )

    def _keep_run_id(self, store: RunIdStore, workflow_run_id: str) -> None:
        store.set(workflow_run_id)
        self.log.info("Run id kept in %s: a retry of this task reattaches to the run", store.where)

    def _defer(self, run: WorkflowRun, started_at: float, polling: PollingSettings, context: Context) -> NoReturn:
        from airflow_provider_alta._airflow.version_compat.task import note_the_deferring_try
        from airflow_provider_alta.triggers.alta import AltaWorkflowRunTrigger

        deadline = time.time() + self.timeout if self.timeout is not None else None
        ending = self._ending(context, run)
        self.log.info("Deferring: the triggerer waits for Alta %s %s", run.describe(), ending.describe())
        note_the_deferring_try(context)
        self.defer(
            trigger=AltaWorkflowRunTrigger(
                workflow_run_id=run.workflow_run_id,
                alta_conn_id=self.alta_conn_id,
                deadline=deadline,
                started_at=started_at,
                polling=polling.to_dict(),
                last_status=run.status.value,
                mailbox=_ref(self, context).to_dict() if self.airflow_webhook else None,
                mailbox_interval=self.webhook_check_interval,
                workflow_name=run.workflow_name,
                workflow_version=run.workflow_version,
                finish=ending.finish_kwarg(),
            ),
            method_name="execute_complete",
            kwargs={"workflow_run_id": run.workflow_run_id, "try_number": context["ti"].try_number},
            timeout=None,
        )

    def _ending(self, context: Context, run: WorkflowRun) -> Ending:
        """Where this task ends when its run succeeds: what the trigger needs to end it itself, or why it may not."""
        from airflow_provider_alta._airflow.run_id_store import variable_key
        from airflow_provider_alta._airflow.triggerer_finish import finish_for

        keeps_history = self.duration_aware and self.do_xcom_push
        return finish_for(
            self,
            context,
            lambda: {
                "output_schema": load_schema(self.output_schema, "output_schema", self._schema_dir()),
                "max_cost": self.max_cost,
                "max_tokens": self.max_tokens,
                "limits_warn_only": self.limits_warn_only,
                "recent_durations": self._recent_durations(context) if keeps_history else None,
                "forget_variable": variable_key(self._store(context)) if self.durable else None,
                "pushed_before": self._push_before_deferring(context, run) if self.do_xcom_push else (),
            },
        )

    def _push_before_deferring(self, context: Context, run: WorkflowRun) -> tuple[str, ...]:
        """Push now, from the worker, the XComs whose values are final already, so that the trigger pushes fewer.

        ``workflow_run_id`` went out in ``execute``; the workflow's name and version are known from the invoke.
        """
        from airflow_provider_alta._airflow.finishing import XCOM_RUN_ID

        pushed = [XCOM_RUN_ID]
        for key, value in (("workflow_name", run.workflow_name), ("workflow_version", run.workflow_version)):
            if value is not None:
                context["ti"].xcom_push(key=key, value=value)
                pushed.append(key)
        return tuple(pushed)

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
        from airflow_provider_alta._airflow.finishing import (
            XCOM_RECENT_DURATIONS,
            extended_history,
            finish_run,
            queries_sent,
        )
        from airflow_provider_alta.models import RunStatus

        self._final_run = run
        if run.status is RunStatus.FAILED:
            self._forget_run(context)
        result = finish_run(
            run,
            context=context,
            log=self.log,
            push=self.do_xcom_push,
            output_schema=load_schema(self.output_schema, "output_schema", self._schema_dir()),
            max_cost=self.max_cost,
            max_tokens=self.max_tokens,
            limits_warn_only=self.limits_warn_only,
            output_format=self.output_format,
            conn_id=self.alta_conn_id,
            queries=queries_sent(self) + trigger_queries,
        )
        if self.duration_aware and self.asynchronous and self.do_xcom_push and run.execution_time_ms:
            history = extended_history(self._recent_durations(context), run.execution_time_ms)
            context["ti"].xcom_push(key=XCOM_RECENT_DURATIONS, value=history)
        self._forget_run(context)
        return result

    def _forget_run(self, context: Context) -> None:
        """Drop the stored run id: the task succeeded, or its run FAILED (a retry starts a new run anyway)."""
        if self.durable:
            self._store(context).clear()

    def _store(self, context: Context) -> RunIdStore:
        """Where this task keeps its run id: somewhere its trigger can forget it, when the trigger may end it."""
        from airflow_provider_alta._airflow.run_id_store import run_id_store

        return run_id_store(context, STATE_KEY, trigger_forgets=self._may_end_in_triggerer())

    def _may_end_in_triggerer(self) -> bool:
        """Whether the trigger may end this task: fixed by the task's settings, so every try agrees."""
        from airflow_provider_alta._airflow.triggerer_finish import why_not_in_triggerer

        return self.deferrable and self.end_in_triggerer and why_not_in_triggerer(self) is None

    def on_kill(self) -> None:
        if self._run_id:
            self.log.warning(
                "The task was killed, but Alta has no cancel endpoint: workflow run %s keeps running remotely "
                "and may still consume credits",
                self._run_id,
            )


def _masked_headers(webhooks: Any) -> Any:
    """``webhooks`` with every header value replaced by Airflow's mask (other shapes are left for validation)."""
    if not isinstance(webhooks, list):
        return webhooks
    return [
        {**hook, "headers": {name: "***" for name in hook["headers"]}}
        if isinstance(hook, dict) and isinstance(hook.get("headers"), dict)
        else hook
        for hook in webhooks
    ]


def _ref(operator: AltaRunWorkflowOperator, context: Context) -> TaskInstanceRef:
    from airflow_provider_alta._webhook.contract import TaskInstanceRef

    ti = context["ti"]
    return TaskInstanceRef(
        conn_id=operator.alta_conn_id,
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        map_index=ti.map_index if ti.map_index is not None else -1,
    )
