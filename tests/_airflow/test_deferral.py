"""What a task sets up before it defers: the trigger's kwargs, how it resumes, what it pushes first, its mailbox.

The defer itself, and the trigger's wait, are run end to end by the dag.test() suites (tests/operators,
tests/sensors) and the real Airflow ones (tests/e2e).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from airflow_provider_alta._airflow.deferral import (
    announce_deferral,
    finish_settings,
    open_mailbox,
    push_final_facts,
    resume_at_execute_complete,
    task_instance_ref,
    trigger_kwargs,
    webhook_already_in,
)
from airflow_provider_alta._airflow.run_id_store import run_id_store
from airflow_provider_alta._airflow.triggerer_finish import Ending, TriggererFinish
from airflow_provider_alta._airflow.version_compat.task import DEFERRED_BY_TRY, retry_resumes_the_last_deferral
from airflow_provider_alta._core.finish_plan import FinishContract
from airflow_provider_alta._core.polling import PollingSettings
from airflow_provider_alta._webhook.contract import MAILBOX_KEY, empty_mailbox
from airflow_provider_alta.hooks.alta import AltaHook
from airflow_provider_alta.models import WorkflowRun
from airflow_provider_alta.triggers.alta import AltaWorkflowRunTrigger

LOG = logging.getLogger(__name__)
PENDING = {"workflowRunId": "r-1", "status": "PENDING", "workflowName": "todayNews", "workflowVersion": "1.0.1"}
WHERE: dict[str, Any] = {"dag_id": "d", "run_id": "manual__1", "task_id": "t", "map_index": -1, "conn_id": "c"}
POLLING = PollingSettings(min_interval=0.5, max_interval=10.0, ratio=0.1)


class TaskInstance:
    """A task instance as the defer setup uses it: its ids and try, its XComs kept in a dict."""

    dag_id, run_id, task_id, try_number = "d", "manual__1", "t", 2

    def __init__(self, map_index: int | None = -1, xcoms: dict[str, Any] | None = None) -> None:
        self.map_index = map_index
        self.xcoms = dict(xcoms or {})

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value

    def xcom_pull(self, *, task_ids: str, key: str, map_indexes: int | None) -> Any:
        assert (task_ids, map_indexes) == (self.task_id, self.map_index)
        return self.xcoms.get(key)


def pending(**changes: Any) -> WorkflowRun:
    return WorkflowRun.from_response({**PENDING, **changes})


@pytest.mark.parametrize(
    ("timeout", "ending", "mailbox"),
    [
        (None, Ending(None, "end_in_triggerer=False"), None),
        (
            60.0,
            Ending(TriggererFinish(**WHERE, push=True)),
            task_instance_ref("c", TaskInstance()),
        ),
    ],
)
def test_the_trigger_kwargs_are_plain_json_and_rebuild_the_trigger(timeout, ending, mailbox):
    before = time.time()
    kwargs = trigger_kwargs(
        pending(), conn_id="c", timeout=timeout, started_at=100.0, polling=POLLING, ending=ending, mailbox=mailbox
    )
    assert json.loads(json.dumps(kwargs)) == kwargs
    path, serialized = AltaWorkflowRunTrigger(**kwargs).serialize()
    assert path == "airflow_provider_alta.triggers.alta.AltaWorkflowRunTrigger" and serialized == kwargs
    assert (kwargs["workflow_run_id"], kwargs["last_status"]) == ("r-1", "PENDING")
    assert (kwargs["workflow_name"], kwargs["workflow_version"]) == ("todayNews", "1.0.1")
    assert kwargs["finish"] == ending.finish_kwarg() and kwargs["polling"] == POLLING.to_dict()
    if timeout is None:
        assert kwargs["deadline"] is None
    else:  # absolute: a restarted triggerer keeps it
        assert before + timeout <= kwargs["deadline"] <= time.time() + timeout
    assert kwargs["mailbox"] == (None if mailbox is None else {**mailbox.to_dict(), "map_index": -1})


def test_the_task_resumes_knowing_its_run_and_the_try_that_deferred():
    assert resume_at_execute_complete({"ti": TaskInstance()}, "r-1") == {
        "method_name": "execute_complete",
        "kwargs": {"workflow_run_id": "r-1", "try_number": 2},
        "timeout": None,
    }


def test_the_defer_line_says_where_the_task_ends(caplog):
    ti = TaskInstance()
    with caplog.at_level(logging.INFO):
        announce_deferral(LOG, {"ti": ti}, pending(), Ending(None, "it has outlets"))
    assert caplog.messages == [
        "Deferring: the triggerer waits for Alta todayNews 1.0.1 run r-1 then the task resumes on a worker: "
        "it has outlets"
    ]
    # Where a retry is handed the deferral of the try that failed (Airflow 3.0), that try is recorded.
    assert ti.xcoms == ({DEFERRED_BY_TRY: 2} if retry_resumes_the_last_deferral() else {})


@pytest.mark.parametrize(
    ("changes", "pushed"),
    [
        ({}, {"workflow_name": "todayNews", "workflow_version": "1.0.1"}),
        ({"workflowName": None}, {"workflow_version": "1.0.1"}),
    ],
)
def test_the_facts_known_already_are_pushed_before_deferring(changes, pushed):
    ti = TaskInstance()
    keys = push_final_facts(ti, pending(**changes))
    assert ti.xcoms == pushed
    assert keys == ("workflow_run_id", *pushed)  # the run id went out before waiting


def test_the_finish_settings_carry_the_contract_and_where_the_trigger_forgets_the_run_id():
    ti = TaskInstance(map_index=None)
    contract = FinishContract(push=True, max_cost=2.0, recent_durations=[1000.0], pushed_before=("status",))
    variable = run_id_store({"ti": ti}, "k", trigger_forgets=True)
    settings = finish_settings(contract, variable, ("workflow_run_id",))
    finish = TriggererFinish(**WHERE, push=True, **settings)
    assert finish.pushed_before == ("workflow_run_id",) and finish.max_cost == 2.0
    assert finish.recent_durations == [1000.0]
    assert settings["forget_variable"] == variable.where.split("'")[1]
    assert finish_settings(contract, None, ())["forget_variable"] is None


def test_an_instance_without_a_map_index_is_index_minus_one():
    assert task_instance_ref("c", TaskInstance(map_index=None)).map_index == -1
    assert task_instance_ref("c", TaskInstance(map_index=4)).describe().endswith("[4]")


def test_the_mailbox_is_opened_empty_and_names_its_connection():
    ti = TaskInstance()
    open_mailbox(ti, "alta_default")
    assert ti.xcoms == {MAILBOX_KEY: empty_mailbox("alta_default")}


@pytest.mark.usefixtures("alta_conn")
def test_a_webhook_already_in_is_confirmed_with_one_query(alta_emulator, caplog):
    alta_emulator.configure(duration=0.05)
    ended = AltaHook().invoke_workflow({"topic": "AI"})  # a run that has ended, as its webhook says
    run = pending(workflowRunId=ended.workflow_run_id)
    notice = {"workflow_run_id": ended.workflow_run_id, "status": "SUCCEED", "received_at": 1.0}
    hook = AltaHook()

    assert webhook_already_in(TaskInstance(), run, hook.get_run, LOG) is run  # an empty mailbox: no query
    assert alta_emulator.request_count("query") == 0
    with caplog.at_level(logging.INFO):
        confirmed = webhook_already_in(TaskInstance(xcoms={MAILBOX_KEY: notice}), run, hook.get_run, LOG)
    assert confirmed.status.value == "SUCCEED" and confirmed.output == ended.output
    assert alta_emulator.request_count("query") == 1
    assert "The webhook arrived before deferring; Alta confirms SUCCEED" in caplog.text
