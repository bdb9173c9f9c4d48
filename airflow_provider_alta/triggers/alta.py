"""The trigger that waits for an Alta run in Airflow's triggerer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent

from airflow_provider_alta._airflow.finishing import (
    EVENT_ERROR,
    EVENT_QUERIES,
    OUTPUT_WITHHELD,
    error_for_event,
    event_body,
    log_the_end,
)
from airflow_provider_alta._airflow.metrics import emit_run_metrics
from airflow_provider_alta._airflow.triggerer_finish import TriggererFinish
from airflow_provider_alta._airflow.triggerer_warmup import prepare_supervisor
from airflow_provider_alta._core.finish_plan import plan_finish
from airflow_provider_alta._core.polling import PollingSettings
from airflow_provider_alta._core.validation import ensure_positive_number
from airflow_provider_alta._core.waiting import Notice
from airflow_provider_alta._webhook.contract import MAILBOX_KEY, TaskInstanceRef, announces_end
from airflow_provider_alta.exceptions import AltaError, AltaTimeoutError
from airflow_provider_alta.models import RunStatus, WorkflowRun

if TYPE_CHECKING:
    from airflow_provider_alta.hooks.alta import AltaAsyncHook

#: How many mailbox read failures in a row are logged one by one before going quiet.
_MAILBOX_FAILURES_LOGGED = 3
#: Seconds a trigger that ended its task waits for the triggerer to read its last line ("ends here") before it goes.
_LAST_LINE_WAIT = 5.0
#: Whether this process said that its triggerer's log socket cannot be watched (said once).
_UNWATCHED_TOLD = False


def _tell_once_unwatched(log: Any) -> None:
    global _UNWATCHED_TOLD
    if not _UNWATCHED_TOLD:
        _UNWATCHED_TOLD = True
        log.warning(
            "This triggerer cannot tell when it has read a trigger's log (its log lines travel on no socket this OS "
            "reports on): the last lines of a trigger that ends its task may reach the triggerer's own log instead "
            "of the task's"
        )


class AltaWorkflowRunTrigger(BaseTrigger):
    """Poll ``/v1/workflow/query/result`` until a run ends, then fire exactly one event.

    It only ever queries: the run was started on the worker (a trigger can run
    twice, and a second invoke would be a second paid run). Its kwargs are
    plain JSON and hold no secret: the key is read from the connection.

    :param workflow_run_id: the run to wait for.
    :param alta_conn_id: the Alta connection (its key must own the run).
    :param deadline: Unix time after which the wait gives up with a
        ``timeout`` event; absolute, so a restarted triggerer keeps it.
    :param started_at: Unix time the run started, so a rebuilt trigger
        resumes the adaptive schedule where it was.
    :param polling: :class:`PollingSettings` fields as a dict.
    :param last_status: the status the run was last seen in, when known (the
        operator has just seen it PENDING): the first query then waits one
        interval instead of going out at once.
    :param mailbox: the task instance (:class:`TaskInstanceRef` fields) whose
        webhook mailbox to watch, when the run reports to the Airflow webhook
        receiver. A notice there is confirmed with one query before the
        trigger fires; the polling schedule keeps running as the fallback.
    :param mailbox_interval: seconds between two mailbox reads (no API call).
    :param workflow_name: the run's workflow, when known, so that every log line names the run the same way.
    :param workflow_version: that workflow's version, when known.
    :param finish: a :class:`~airflow_provider_alta._airflow.triggerer_finish.TriggererFinish` as a dict: when the run
        SUCCEEDs and the task's contracts hold, the trigger pushes the task's XComs, forgets its stored run
        id and ends it with ``TaskSuccessEvent``, so no worker runs it again. Only in a real triggerer:
        ``dag.test()`` runs triggers inline and always resumes the task.

    The event is ``{"status": "success" | "failed" | "timeout" | "error",
    "workflow_run_id", "message", "run", "queries"}``; ``queries`` counts the
    queries this trigger sent, for the run's metrics; ``run`` is the final run body for
    ``success`` and ``failed``, so the task needs no extra request — unless
    Airflow could not carry the output in the event: then ``run`` comes
    without it and ``output_withheld`` says why, and the task reads it again.
    An ``error`` event also carries ``error``: the error's class name and
    facts (status, code, endpoint…), so the task raises that same error and a
    rejected key fails without a retry, as it does outside the triggerer.
    An event never carries the run's input, and its log line never shows the
    output (Airflow logs every event it fires).
    """

    #: Seconds a trigger about to end its task waits for the triggerer to read its closing line; past them the task
    #: resumes on a worker instead, which logs the line (see :mod:`airflow_provider_alta._airflow.triggerer_logs`).
    closing_line_wait: ClassVar[float] = 30.0

    def __init__(
        self,
        workflow_run_id: str,
        alta_conn_id: str = "alta_default",
        deadline: float | None = None,
        started_at: float | None = None,
        polling: dict[str, Any] | None = None,
        last_status: str | None = None,
        mailbox: dict[str, Any] | None = None,
        mailbox_interval: float = 1.0,
        workflow_name: str | None = None,
        workflow_version: str | None = None,
        finish: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.finish = dict(finish) if finish is not None else None
        self._finish = TriggererFinish.from_dict(self.finish) if self.finish is not None else None
        self.workflow_name = workflow_name
        self.workflow_version = workflow_version
        self.mailbox = dict(mailbox) if mailbox is not None else None
        self.mailbox_interval = mailbox_interval
        ensure_positive_number(mailbox_interval, "mailbox_interval")
        self._ref = TaskInstanceRef(**self.mailbox) if self.mailbox is not None else None
        self.last_status = last_status
        self.workflow_run_id = workflow_run_id
        self.alta_conn_id = alta_conn_id
        self.deadline = deadline
        self.started_at = started_at if started_at is not None else time.time()
        self.polling = dict(polling or {})
        PollingSettings(**self.polling)  # fail now, not in the triggerer
        self._ended: WorkflowRun | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "workflow_run_id": self.workflow_run_id,
                "alta_conn_id": self.alta_conn_id,
                "deadline": self.deadline,
                "started_at": self.started_at,
                "polling": self.polling,
                "last_status": self.last_status,
                "mailbox": self.mailbox,
                "mailbox_interval": self.mailbox_interval,
                "workflow_name": self.workflow_name,
                "workflow_version": self.workflow_version,
                "finish": self.finish,
            },
        )

    def _event(
        self,
        status: str,
        message: str,
        run: WorkflowRun | None = None,
        error: AltaError | None = None,
        queries: int = 0,
    ) -> TriggerEvent:
        body, withheld = event_body(run) if run is not None else (None, None)
        payload: dict[str, Any] = {
            "status": status,
            "workflow_run_id": self.workflow_run_id,
            "message": message,
            "run": body,
            EVENT_QUERIES: queries,
        }
        if withheld:
            self.log.warning("The event leaves the output of run %s to the task: %s", self.workflow_run_id, withheld)
            payload[OUTPUT_WITHHELD] = withheld
        if error is not None:
            payload[EVENT_ERROR] = error_for_event(error)
        return RunEndEvent(payload=payload)

    def _last_seen(self) -> WorkflowRun | None:
        if self.last_status is None:
            return None
        known = {"workflowName": self.workflow_name, "workflowVersion": self.workflow_version}
        body = {"workflowRunId": self.workflow_run_id, "status": self.last_status}
        return WorkflowRun.from_response({**body, **{k: v for k, v in known.items() if v}})

    def _log_status(self, run: WorkflowRun, elapsed: float) -> None:
        self.log.info("Alta %s is %s after %.0f s", run.describe(), run.status.value, elapsed)

    def _log_notice(self, notice: Notice) -> None:
        """Failure streaks and recoveries, in the trigger's log (throttled by the waiter)."""
        self.log.log(notice.level, "%s", notice.message)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_alta._airflow import internals
        from airflow_provider_alta.hooks.alta import AltaAsyncHook

        if self._finish is not None and internals.in_triggerer():
            prepare_supervisor(self._finish, self.log)
        hook = AltaAsyncHook(self.alta_conn_id)
        try:
            async with hook:
                polled = hook.wait_for_run(
                    self.workflow_run_id,
                    deadline=self.deadline,
                    started_at=self.started_at,
                    polling=PollingSettings(**self.polling),
                    on_status=self._log_status,
                    on_notice=self._log_notice,
                    initial=self._last_seen(),
                )
                if self._ref is None:
                    run = await polled
                else:
                    run = await _first_of(polled, self._watch_mailbox(hook, self._ref))
        except AltaTimeoutError as err:
            yield self._event("timeout", str(err), queries=hook.queries_sent)
            return
        except AltaError as err:
            yield self._event("error", f"{type(err).__name__}: {err}", error=err, queries=hook.queries_sent)
            return
        self._ended = run
        if run.status is RunStatus.SUCCEED and self._finish is not None and await self._end_task(run, hook):
            yield TaskSuccessEvent()
            return
        status = "success" if run.status is RunStatus.SUCCEED else "failed"
        yield self._event(status, f"Alta {run.describe()} ended {run.status.value}", run, queries=hook.queries_sent)

    async def _end_task(self, run: WorkflowRun, hook: AltaAsyncHook) -> bool:
        """Finish the task here as its worker would; ``False`` (and why, in the log) when a worker must.

        The closing line comes first, and the triggerer has read it before the first request that lets the task
        end: the triggerer writes the lines of an ended trigger that it had not read yet to its own output, not to
        the task's log (:mod:`airflow_provider_alta._airflow.triggerer_logs`). A triggerer too busy to read it within
        :attr:`closing_line_wait` seconds has the task resume on a worker, which logs it.
        """
        from airflow_provider_alta._airflow import internals
        from airflow_provider_alta._airflow.triggerer_logs import wait_until_read

        finish = self._finish
        assert finish is not None
        if not internals.in_triggerer():
            self.log.info("Not in a triggerer (dag.test() runs triggers inline): the task resumes to finish")
            return False
        plan = plan_finish(run, finish.contract())
        if plan.error is not None:
            self.log.info("The task resumes on a worker to fail there: %s", plan.error)
            return False
        log_the_end(plan, self.log)
        if not await self._closing_line_read(finish):
            return False
        try:
            await finish.apply(plan)
        except Exception as exc:
            self.log.warning(
                "Could not finish %s in the triggerer (%s: %s); it resumes on a worker, which pushes its XComs",
                finish.describe(),
                type(exc).__name__,
                exc,
            )
            return False
        queries = finish.queries_before + hook.queries_sent
        emit_run_metrics(
            run, dag_id=finish.dag_id, task_id=finish.task_id, conn_id=finish.conn_id, queries=queries, log=self.log
        )
        self.log.info("%s ends here, in the triggerer: its XComs are pushed", finish.describe())
        await wait_until_read(_LAST_LINE_WAIT)  # so that the log says where the task ended; the event goes out anyway
        return True

    async def _closing_line_read(self, finish: TriggererFinish) -> bool:
        """Whether the triggerer has read the closing line (or cannot tell); ``False``, and why, when it is too busy."""
        from airflow_provider_alta._airflow.triggerer_logs import wait_until_read

        read = await wait_until_read(self.closing_line_wait)
        if read is None:
            _tell_once_unwatched(self.log)
        elif not read:
            self.log.warning(
                "The triggerer has not read this trigger's log for %g s: %s resumes on a worker, which logs how "
                "the run ended",
                self.closing_line_wait,
                finish.describe(),
            )
        return read is not False

    async def _watch_mailbox(self, hook: AltaAsyncHook, ref: TaskInstanceRef) -> WorkflowRun:
        """Wait until the webhook mailbox announces the end, confirmed by one query to Alta.

        In a triggerer, the connection's batched reader (:mod:`airflow_provider_alta._webhook.mailbox_reader`) reads the
        mailboxes of every waiting task in one request to the API server per interval. ``dag.test()`` runs the
        trigger inline, with no API server to ask: there the trigger reads its own mailbox.
        """
        from airflow_provider_alta._airflow import internals
        from airflow_provider_alta._webhook.mailbox_reader import watch_mailbox

        if internals.in_triggerer():
            async with watch_mailbox(ref, self.workflow_run_id, self.mailbox_interval) as watch:
                while True:
                    run = await self._confirm_notice(hook, await watch.next_end())
                    if run is not None:
                        return run
        self.log.info(
            "Not in a triggerer (dag.test() runs triggers inline): reading the webhook mailbox of %s itself",
            ref.describe(),
        )
        checked: dict[str, Any] | None = None
        failures = 0
        while True:
            try:
                notice = await _read_mailbox(ref)
            except Exception as exc:
                # Polling carries on without the mailbox; say why, without flooding the log.
                failures += 1
                if failures <= _MAILBOX_FAILURES_LOGGED:
                    self.log.warning(
                        "Could not read the webhook mailbox of %s (%s: %s); polling Alta meanwhile",
                        ref.describe(),
                        type(exc).__name__,
                        exc,
                    )
            else:
                failures = 0
                if announces_end(notice, self.workflow_run_id) and notice != checked:
                    checked = notice
                    run = await self._confirm_notice(hook, notice)
                    if run is not None:
                        return run
            await asyncio.sleep(self.mailbox_interval)

    async def _confirm_notice(self, hook: AltaAsyncHook, notice: dict[str, Any]) -> WorkflowRun | None:
        """The ended run when Alta confirms ``notice`` (one query); ``None``, and why in the log, when it does not."""
        run = await hook.get_run(self.workflow_run_id)
        if run.is_terminal:
            self.log.info("Webhook for Alta %s confirmed: %s", run.describe(), run.status.value)
            return run
        self.log.warning(
            "A webhook said Alta run %s ended %s, but Alta reports %s; ignoring it and waiting",
            self.workflow_run_id,
            notice.get("status"),
            run.status.value,
        )
        return None

    async def on_kill(self) -> None:
        if self._ended is not None:
            self.log.info(
                "The trigger was stopped after Alta %s ended %s", self._ended.describe(), self._ended.status.value
            )
            return
        self.log.warning(
            "The task was stopped, but Alta has no cancel endpoint: workflow run %s keeps running remotely "
            "and may still consume credits",
            self.workflow_run_id,
        )


class RunEndEvent(TriggerEvent):
    """A trigger event whose log line leaves the run's output out: Airflow logs every event it fires."""

    def __repr__(self) -> str:
        payload = self.payload
        run = payload.get("run") if isinstance(payload, dict) else None
        if isinstance(run, dict) and "output" in run:
            payload = {**payload, "run": {**run, "output": "<not logged>"}}
        return f"TriggerEvent<{payload!r}>"

    __str__ = __repr__


async def _read_mailbox(ref: TaskInstanceRef) -> Any:
    """The task instance's mailbox notice, read on its own (``dag.test()``; a triggerer reads them batched)."""
    from airflow_provider_alta._airflow.version_compat.xcom import aget_xcom

    return await aget_xcom(
        key=MAILBOX_KEY, dag_id=ref.dag_id, run_id=ref.run_id, task_id=ref.task_id, map_index=ref.map_index
    )


async def _first_of(*waits: Awaitable[WorkflowRun]) -> WorkflowRun:
    """The result of whichever wait ends first; the others are cancelled."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return next(iter(done)).result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
