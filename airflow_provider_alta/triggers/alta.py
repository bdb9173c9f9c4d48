"""The trigger that waits for an Alta run in Airflow's triggerer."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_alta.exceptions import AltaError, AltaTimeoutError
from airflow_provider_alta.models import RunStatus, WorkflowRun
from airflow_provider_alta.polling import PollingSettings


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

    The event is ``{"status": "success" | "failed" | "timeout" | "error",
    "workflow_run_id", "message", "run"}``; ``run`` is the final run body for
    ``success`` and ``failed``, so the task needs no extra request.
    """

    def __init__(
        self,
        workflow_run_id: str,
        alta_conn_id: str = "alta_default",
        deadline: float | None = None,
        started_at: float | None = None,
        polling: dict[str, Any] | None = None,
        last_status: str | None = None,
    ) -> None:
        super().__init__()
        self.last_status = last_status
        self.workflow_run_id = workflow_run_id
        self.alta_conn_id = alta_conn_id
        self.deadline = deadline
        self.started_at = started_at if started_at is not None else time.time()
        self.polling = dict(polling or {})
        PollingSettings(**self.polling)  # fail now, not in the triggerer

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
            },
        )

    def _event(self, status: str, message: str, run: WorkflowRun | None = None) -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "workflow_run_id": self.workflow_run_id,
                "message": message,
                "run": run.to_dict() if run is not None else None,
            }
        )

    def _last_seen(self) -> WorkflowRun | None:
        if self.last_status is None:
            return None
        return WorkflowRun.from_response({"workflowRunId": self.workflow_run_id, "status": self.last_status})

    def _log_status(self, run: WorkflowRun, elapsed: float) -> None:
        self.log.info("Alta %s is %s after %.0f s", run.describe(), run.status.value, elapsed)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_alta.hooks.alta import AltaAsyncHook

        try:
            async with AltaAsyncHook(self.alta_conn_id) as hook:
                run = await hook.wait_for_run(
                    self.workflow_run_id,
                    deadline=self.deadline,
                    started_at=self.started_at,
                    polling=PollingSettings(**self.polling),
                    on_status=self._log_status,
                    initial=self._last_seen(),
                )
        except AltaTimeoutError as err:
            yield self._event("timeout", str(err))
            return
        except AltaError as err:
            yield self._event("error", f"{type(err).__name__}: {err}")
            return
        status = "success" if run.status is RunStatus.SUCCEED else "failed"
        yield self._event(status, f"Alta {run.describe()} ended {run.status.value}", run)

    async def on_kill(self) -> None:
        self.log.warning(
            "The task was stopped, but Alta has no cancel endpoint: workflow run %s keeps running remotely "
            "and may still consume credits",
            self.workflow_run_id,
        )
