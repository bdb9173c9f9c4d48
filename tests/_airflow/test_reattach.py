"""The durable reattach protocol on its own: a try, its store and the real hook against the emulator.

The store is the task instance's durable store as Airflow keeps it (one value per task instance), in memory; the
dag.test() suites (tests/operators) run the same protocol through Airflow's own stores and real retries.
"""

from __future__ import annotations

import logging
import re

import pytest

from airflow_provider_alta._airflow.reattach import STATE_KEY, SYNC_INVOKE_MARK, DurableInvoke, task_store
from airflow_provider_alta.exceptions import (
    AltaInvalidRequestError,
    AltaInvokeOutcomeUnknownError,
    AltaRunUnknownError,
)
from airflow_provider_alta.hooks.alta import AltaHook
from airflow_provider_alta.models import WorkflowRun

pytestmark = pytest.mark.usefixtures("alta_conn")

LOG = logging.getLogger(__name__)
INPUT = {"topic": "AI"}
LOST_AT = "2026-01-01T00:00:00+00:00"


class MemoryStore:
    """A task instance's durable store: one value, and every change made to it, in order."""

    where = "the test's store"

    def __init__(self, value: str | None = None) -> None:
        self.value = value
        self.changes: list[str | None] = []

    def get(self) -> str | None:
        return self.value

    def set(self, workflow_run_id: str) -> None:
        self.value = workflow_run_id
        self.changes.append(workflow_run_id)

    def clear(self) -> None:
        self.value = None
        self.changes.append(None)


def durable(store: MemoryStore | None, *, asynchronous: bool = True, allowed: bool = False) -> DurableInvoke:
    mode = "async, waiting in the worker" if asynchronous else "synchronous"
    return DurableInvoke(
        AltaHook(), store, LOG, asynchronous, retry_on_unknown_outcome=allowed, conn_id="alta_default", mode=mode
    )


def try_to_run(protocol: DurableInvoke, try_number: int = 2) -> WorkflowRun:
    return protocol.reattach_or_invoke(INPUT, user_id=None, webhooks=None, try_number=try_number)


def test_a_first_try_invokes_and_keeps_the_run_id(alta_emulator, caplog):
    store = MemoryStore("r-of-another-instance")  # a first try has no earlier run: it does not even look
    with caplog.at_level(logging.INFO):
        run = try_to_run(durable(store), try_number=1)
    assert store.value == run.workflow_run_id and store.changes == [run.workflow_run_id]
    assert (alta_emulator.invoke_count(), alta_emulator.request_count("query")) == (1, 0)
    assert "Invoking the Alta workflow of connection 'alta_default' (async, waiting in the worker)" in caplog.text
    assert "Run id kept in the test's store: a retry of this task reattaches to the run" in caplog.text


@pytest.mark.parametrize(
    ("earlier", "reattaches"),
    [("going", True), ("succeeded", True), ("failed", False)],
)
def test_a_later_try_reattaches_to_a_run_going_or_succeeded(alta_emulator, caplog, earlier, reattaches):
    outcome = "fail" if earlier == "failed" else "succeed"
    alta_emulator.configure(duration=30 if earlier == "going" else 0.05, outcome=outcome)
    first = AltaHook().invoke_workflow(INPUT, is_async=earlier == "going")  # the earlier try's run
    store = MemoryStore(first.workflow_run_id)
    with caplog.at_level(logging.INFO):
        run = try_to_run(durable(store))
    assert (run.workflow_run_id == first.workflow_run_id) is reattaches
    assert alta_emulator.invoke_count() == (1 if reattaches else 2)
    assert store.value == run.workflow_run_id
    assert ("Reattaching to Alta todayNews 1.0.1 run" in caplog.text) is reattaches
    assert (f"The run {first.workflow_run_id} of a previous try FAILED; starting a new run" in caplog.text) is (
        not reattaches
    )


def test_a_stored_run_alta_does_not_know_is_not_replaced(alta_emulator):
    store = MemoryStore("r-unknown-to-alta")
    with pytest.raises(AltaRunUnknownError, match="this try does not start a new paid run") as caught:
        try_to_run(durable(store))
    assert (caught.value.workflow_run_id, caught.value.status) == ("r-unknown-to-alta", 404)
    assert store.value is None  # this try decided: clearing the task afterwards starts a new run
    assert alta_emulator.invoke_count() == 0


def test_a_stored_run_alta_does_not_know_is_replaced_when_allowed(alta_emulator, caplog):
    store = MemoryStore("r-unknown-to-alta")
    with caplog.at_level(logging.WARNING):
        run = try_to_run(durable(store, allowed=True))
    assert store.value == run.workflow_run_id and alta_emulator.invoke_count() == 1
    assert "is unknown to Alta (RUN_NOT_FOUND); starting a new run (retry_on_unknown_outcome=True)" in caplog.text


def test_a_try_lost_during_its_synchronous_invoke_stops_the_next_one_paying_again(alta_emulator):
    store = MemoryStore(f"{SYNC_INVOKE_MARK}{LOST_AT}")
    with pytest.raises(AltaInvokeOutcomeUnknownError, match=re.escape(f"synchronous invoke (sent at {LOST_AT})")):
        try_to_run(durable(store, asynchronous=False))
    assert store.value is None
    assert alta_emulator.request_count() == 0  # nothing asked: Alta cannot name that run


def test_a_try_lost_during_its_synchronous_invoke_may_pay_again_when_allowed(alta_emulator):
    alta_emulator.configure(duration=0.05)
    store = MemoryStore(f"{SYNC_INVOKE_MARK}{LOST_AT}")
    run = try_to_run(durable(store, asynchronous=False, allowed=True))
    assert run.is_terminal and alta_emulator.invoke_count() == 1
    assert store.changes[-1] == run.workflow_run_id


def test_a_synchronous_invoke_is_marked_while_it_is_open(alta_emulator):
    alta_emulator.configure(duration=0.05)
    store = MemoryStore()
    run = try_to_run(durable(store, asynchronous=False), try_number=1)
    (mark, kept) = store.changes
    assert mark.startswith(SYNC_INVOKE_MARK) and kept == run.workflow_run_id


def test_a_refused_synchronous_invoke_clears_its_mark(alta_emulator):
    alta_emulator.inject("invoke", "status", status=400)
    store = MemoryStore()
    with pytest.raises(AltaInvalidRequestError):
        try_to_run(durable(store, asynchronous=False), try_number=1)
    (mark, cleared) = store.changes
    assert mark.startswith(SYNC_INVOKE_MARK) and cleared is None  # no run started: a retry may invoke


def test_an_unreadable_answer_that_names_its_run_keeps_the_id(alta_emulator):
    deep = "[" * 5_000 + "]" * 5_000
    alta_emulator.inject(
        "invoke", "body", text=f'{{"workflowRunId": "r-named", "status": "SUCCEED", "output": {deep}}}'
    )
    store = MemoryStore()
    with pytest.raises(AltaInvokeOutcomeUnknownError) as caught:
        try_to_run(durable(store, asynchronous=False), try_number=1)
    assert caught.value.workflow_run_id == "r-named" and store.value == "r-named"  # the retry finds it


def test_without_a_store_every_try_invokes(alta_emulator):
    protocol = durable(None)
    first, second = try_to_run(protocol, try_number=1), try_to_run(protocol, try_number=2)
    assert first.workflow_run_id != second.workflow_run_id and alta_emulator.invoke_count() == 2
    protocol.forget()  # nothing to forget, and no error


def test_the_store_is_the_task_state_store_unless_the_trigger_must_forget_the_id():
    class TaskStateStore:  # what Airflow 3.3 puts in the context
        def __init__(self) -> None:
            self.values: dict[str, str] = {}

        def get(self, key: str) -> str | None:
            return self.values.get(key)

        def set(self, key: str, value: str) -> None:
            self.values[key] = value

    ti = type("TI", (), {"dag_id": "d", "run_id": "manual__1", "task_id": "t", "map_index": None})()
    state = TaskStateStore()
    store = task_store({"task_state_store": state, "ti": ti}, trigger_forgets=False)
    store.set("r-1")
    assert (store.where, state.values) == ("the task state store", {STATE_KEY: "r-1"})
    assert task_store({"task_state_store": state, "ti": ti}, trigger_forgets=True).where.startswith(
        "the Airflow Variable 'alta_run_id."
    )
