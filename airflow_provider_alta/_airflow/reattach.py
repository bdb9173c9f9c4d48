"""The durable reattach protocol: a retry takes the run an earlier try started instead of paying for a second one.

Alta has no idempotency key, so an invoke sent again may start a second paid run. The run id is kept in the task
instance's durable store (:func:`~airflow_provider_alta._airflow.run_id_store.run_id_store`) before any waiting, and a
later try decides from what it finds there:

==========================================  ===================================================================
the store holds                             this try
==========================================  ===================================================================
nothing (always so on a first try)          invokes, and keeps the new run's id
a run Alta reports going or SUCCEEDed       reattaches to it: no new run
a run Alta reports FAILED                   invokes afresh
a run Alta does not know (404)              fails (:class:`AltaRunUnknownError`), unless ``retry_on_unknown_outcome``
the mark of an open synchronous invoke      fails (:class:`AltaInvokeOutcomeUnknownError`), unless the same
==========================================  ===================================================================

Alta names a synchronous run only when it ends, so a synchronous invoke keeps a mark while it is open: a try lost
meanwhile leaves a run nobody can find, and the mark tells the retry so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_alta.exceptions import (
    AltaError,
    AltaInvokeOutcomeUnknownError,
    AltaNotFoundError,
    AltaRunUnknownError,
)
from airflow_provider_alta.models import RunStatus, WorkflowRun

if TYPE_CHECKING:
    from airflow_provider_alta._airflow.run_id_store import RunIdStore

#: The key of the run id in the task state store (Airflow 3.3+; see :func:`run_id_store.run_id_store`).
STATE_KEY = "alta_workflow_run_id"
#: Kept in the durable store while a synchronous invoke is open (Alta names a synchronous run only when it ends).
SYNC_INVOKE_MARK = "synchronous-invoke-sent-at:"


class RunsWorkflows(Protocol):
    """What the protocol asks of Alta (the sync hook): start a run, and look at one."""

    def invoke_workflow(
        self,
        input: dict[str, Any],
        *,
        user_id: str | None = None,
        is_async: bool = False,
        webhooks: list[dict[str, Any]] | None = None,
    ) -> WorkflowRun: ...

    def get_run(self, workflow_run_id: str) -> WorkflowRun: ...


def task_store(context: Mapping[str, Any], *, trigger_forgets: bool) -> RunIdStore:
    """Where this task instance keeps its run id.

    ``trigger_forgets``: the task's trigger may end it, and must then be able to forget the id itself.
    """
    from airflow_provider_alta._airflow.run_id_store import run_id_store

    return run_id_store(context, STATE_KEY, trigger_forgets=trigger_forgets)


@dataclass
class DurableInvoke:
    """One try's invoke, made durable: reattach to the run of an earlier try when the store says so, else invoke.

    :param hook: what talks to Alta.
    :param store: the task instance's durable store (``None``: not durable, every try invokes).
    :param log: the task's logger.
    :param asynchronous: whether the invoke is asynchronous (the run's id comes back at once).
    :param retry_on_unknown_outcome: start a new run where an earlier try's run cannot be found.
    :param conn_id: the Alta connection, named in the log.
    :param mode: how the task waits, named in the log.
    """

    hook: RunsWorkflows
    store: RunIdStore | None
    log: Any
    asynchronous: bool
    retry_on_unknown_outcome: bool = False
    conn_id: str = ""
    mode: str = ""

    def reattach_or_invoke(
        self, input: dict[str, Any], *, user_id: str | None, webhooks: list[dict[str, Any]] | None, try_number: int
    ) -> WorkflowRun:
        """The run of an earlier try when it is going or succeeded; else a new run, its id kept before returning."""
        # A first try has no earlier run to reattach to (and the lookup would log a 404 before Airflow 3.3).
        stored = self.store.get() if self.store is not None and try_number > 1 else None
        if stored:
            previous = self._earlier_run(stored)
            if previous is not None:
                return previous
        return self._invoke(input, user_id=user_id, webhooks=webhooks)

    def keep(self, workflow_run_id: str) -> None:
        """Store the run id, where a retry of this task instance finds it."""
        if self.store is not None:
            self.store.set(workflow_run_id)
            self.log.info("Run id kept in %s: a retry of this task reattaches to the run", self.store.where)

    def _earlier_run(self, stored: str) -> WorkflowRun | None:
        """The earlier try's run to reattach to; ``None`` when this try must invoke (or raise, when it must not)."""
        if stored.startswith(SYNC_INVOKE_MARK):
            self._after_a_lost_synchronous_invoke(stored)
            return None
        try:
            previous = self.hook.get_run(stored)
        except AltaNotFoundError as err:
            self._after_an_unknown_stored_run(stored, err)
            return None
        if previous.status is RunStatus.FAILED:
            self.log.warning("The run %s of a previous try FAILED; starting a new run", stored)
            return None
        self.log.info(
            "Reattaching to Alta %s from a previous try (status %s); no new run started",
            previous.describe(),
            previous.status.value,
        )
        return previous

    def _invoke(
        self, input: dict[str, Any], *, user_id: str | None, webhooks: list[dict[str, Any]] | None
    ) -> WorkflowRun:
        self._announce_invoke()
        if self.store is not None and not self.asynchronous:
            # If this worker is lost before the answer, the mark tells the retry that a paid run may exist that
            # nobody can find.
            self.store.set(f"{SYNC_INVOKE_MARK}{datetime.now(timezone.utc).isoformat(timespec='seconds')}")
        try:
            run = self.hook.invoke_workflow(input, user_id=user_id, is_async=self.asynchronous, webhooks=webhooks)
        except AltaInvokeOutcomeUnknownError as err:
            # An answer that named its run but could not be read (e.g. nested too deeply): a retry must find it.
            if err.workflow_run_id:
                self.keep(err.workflow_run_id)
            raise
        except AltaError:
            if self.store is not None and not self.asynchronous:
                self.store.clear()  # any other Alta error means no run started: a retry may invoke
            raise
        if self.asynchronous:  # a synchronous run has ended by now: finishing it logs the one closing line
            self.log.info("Alta started %s (status %s)", run.describe(), run.status.value)
        self.keep(run.workflow_run_id)
        return run

    def _announce_invoke(self) -> None:
        if self.asynchronous:
            self.log.info("Invoking the Alta workflow of connection %r (%s)", self.conn_id, self.mode)
        else:
            self.log.info(
                "Invoking the Alta workflow of connection %r synchronously: one request that lasts as long as the run",
                self.conn_id,
            )

    def _after_a_lost_synchronous_invoke(self, mark: str) -> None:
        """An earlier try was lost while its synchronous invoke was open: refuse to pay twice, unless allowed."""
        since = mark.removeprefix(SYNC_INVOKE_MARK)
        if not self.retry_on_unknown_outcome:
            self.forget()  # this try decides; clearing the task afterwards is the user's choice of a new run
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

    def _after_an_unknown_stored_run(self, stored: str, err: AltaNotFoundError) -> None:
        """Alta answers 404 for the run an earlier try started: refuse to start another in its place, unless allowed."""
        if not self.retry_on_unknown_outcome:
            self.forget()  # this try decides; clearing the task afterwards is the user's choice of a new run
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

    def forget(self) -> None:
        """Drop the stored run id: the task is done with its run (it succeeded, or the run FAILED)."""
        if self.store is not None:
            self.store.clear()
