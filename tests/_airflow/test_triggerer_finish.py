"""What a trigger checks and pushes when it ends its task itself (the real triggerer path is in tests/e2e)."""

from __future__ import annotations

import datetime
import json
import logging
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from airflow.sdk import DAG, Asset

from airflow_provider_alta._airflow.finishing import finish_run
from airflow_provider_alta._airflow.triggerer_finish import (
    AIRFLOW_3_0_REASON,
    OPENLINEAGE_REASON,
    TriggererFinish,
    carried,
    finish_for,
    why_not_in_triggerer,
)
from airflow_provider_alta._airflow.version_compat.task import callback_parse_deactivates_dags, openlineage_reports
from airflow_provider_alta._core.finish_plan import FinishContract, plan_finish
from airflow_provider_alta.exceptions import AltaValidationError
from airflow_provider_alta.models import WorkflowRun
from airflow_provider_alta.operators.alta import AltaRunWorkflowOperator
from airflow_provider_alta.triggers.alta import AltaWorkflowRunTrigger
from tests._airflow.conftest import FILE_TRANSPORT
from tests.conftest import SECRET_KEY
from tests.dag_runner import plain

try:  # Airflow 3.2+
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # Airflow 3.0, 3.1
    from airflow.exceptions import TaskDeferred  # type: ignore[no-redef,attr-defined]

BODY = {
    "workflowRunId": "r-1",
    "status": "SUCCEED",
    "workflowName": "todayNews",
    "workflowVersion": "1.0.1",
    "input": {"topic": "AI"},
    "output": {"news": [{"title": "A"}]},
    "totalCost": 0.5,
    "totalTokens": 1200,
    "workflowExecutionTime": 15000,
}
WHERE = {"dag_id": "d", "run_id": "manual__1", "task_id": "t", "map_index": -1, "conn_id": "alta_default"}
log = logging.getLogger(__name__)


def run(**changes) -> WorkflowRun:
    return WorkflowRun.from_response({**BODY, **changes})


class RecordingTi:
    """A worker's task instance, as far as the finish uses it: it keeps what is pushed."""

    dag_id, task_id = WHERE["dag_id"], WHERE["task_id"]

    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


@pytest.mark.parametrize(
    ("contract", "history"),
    [
        (FinishContract(push=True, recent_durations=[9000.0, 11000.0]), [9000.0, 11000.0, 15000]),
        (FinishContract(push=True, output_format="json", max_cost=1.0, output_schema={"type": "object"}), None),
        (FinishContract(push=True, max_tokens=100, limits_warn_only=True), None),
        (FinishContract(push=False, recent_durations=[9000.0]), None),
    ],
)
def test_the_trigger_pushes_what_the_worker_pushes_and_returns(contract, history):
    """The same plan, two appliers: a worker's pushes, plus the return value Airflow pushes for it, are the XComs a
    trigger pushes when it ends the task, with the contract carried through the trigger's kwargs."""
    ti = RecordingTi()
    returned = finish_run(run(), contract, context={"ti": ti}, log=log)
    worker = {**ti.pushed, "return_value": returned} if contract.push else ti.pushed
    finish = TriggererFinish(**WHERE, push=contract.push, output_format=contract.output_format, **carried(contract))
    finish = TriggererFinish.from_dict(json.loads(json.dumps(finish.to_dict())))
    assert finish.contract() == contract
    assert plan_finish(run(), finish.contract()).with_return_value() == worker
    assert worker.get("alta_recent_execution_times_ms") == history


def test_what_the_task_pushed_before_deferring_is_not_pushed_again():
    contract = FinishContract(push=True, pushed_before=("workflow_run_id", "workflow_name"))
    finish = TriggererFinish(**WHERE, push=True, **carried(contract))
    pushed = plan_finish(run(), finish.contract()).with_return_value()
    assert "workflow_run_id" not in pushed and "workflow_name" not in pushed and pushed["status"] == "SUCCEED"
    assert TriggererFinish.from_dict(json.loads(json.dumps(finish.to_dict()))) == finish


def test_kwargs_round_trip_as_plain_json_without_secrets():
    finish = TriggererFinish(**WHERE, push=True, output_schema={"type": "object"}, forget_variable="alta_run_id.x")
    trigger = AltaWorkflowRunTrigger("r-1", finish=finish.to_dict())
    path, kwargs = trigger.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs and SECRET_KEY not in json.dumps(kwargs)
    assert AltaWorkflowRunTrigger(**kwargs).serialize() == (path, kwargs)
    with pytest.raises(AltaValidationError, match="unexpected \\['password'\\]"):
        AltaWorkflowRunTrigger("r-1", finish={**finish.to_dict(), "password": "x"})


def test_tasks_that_must_resume_on_a_worker():
    with DAG("d", schedule=None, start_date=datetime.datetime(2026, 1, 1)):
        plain = AltaRunWorkflowOperator(task_id="plain", input={}, deferrable=True)
        outlets = AltaRunWorkflowOperator(task_id="outlets", input={}, deferrable=True, outlets=[Asset("news")])
        expanded = AltaRunWorkflowOperator(task_id="expanded", input={}, deferrable=True)
        AltaRunWorkflowOperator.partial(task_id="per_item", deferrable=True).expand(input=expanded.output)
    if callback_parse_deactivates_dags():  # Airflow 3.0: every task resumes, for the same reason
        assert {why_not_in_triggerer(task) for task in (plain, outlets, expanded)} == {AIRFLOW_3_0_REASON}
        return
    assert why_not_in_triggerer(plain) is None
    assert "asset events" in (why_not_in_triggerer(outlets) or "")
    assert "mapped task" in (why_not_in_triggerer(expanded) or "")


def test_the_airflow_3_0_reason_names_the_way_out():
    assert "end_in_triggerer=False" in AIRFLOW_3_0_REASON


# -- OpenLineage: its listener runs only where the task finishes -------------------------------------------------


def lineage_dag() -> tuple[AltaRunWorkflowOperator, AltaRunWorkflowOperator]:
    with DAG("lineage", schedule=None, start_date=datetime.datetime(2026, 1, 1)):
        reported = AltaRunWorkflowOperator(task_id="reported", input={}, deferrable=True)
        quiet = AltaRunWorkflowOperator(task_id="quiet", input={}, deferrable=True)
    return reported, quiet


def without_openlineage() -> str | None:
    """What a task that OpenLineage does not report is told: nothing, or Airflow 3.0's own reason."""
    return AIRFLOW_3_0_REASON if callback_parse_deactivates_dags() else None


def test_a_task_openlineage_reports_resumes_on_a_worker(openlineage_on):
    reported, _ = lineage_dag()
    # Before Airflow 3.0's own reason: OpenLineage is why, on every release.
    assert why_not_in_triggerer(reported) == OPENLINEAGE_REASON
    assert "OpenLineage" in OPENLINEAGE_REASON and "alta_run" in OPENLINEAGE_REASON
    openlineage_on.setenv("AIRFLOW__OPENLINEAGE__DISABLED", "True")  # the provider's own off switch
    reported, _ = lineage_dag()  # a task decides once per execution
    assert why_not_in_triggerer(reported) == without_openlineage()


def test_without_an_openlineage_transport_the_listener_is_off():
    """The provider's default: no transport configured, no listener registered (conf.is_disabled())."""
    from airflow.providers.openlineage import conf as openlineage_conf

    assert openlineage_conf.is_disabled()
    reported, _ = lineage_dag()
    assert openlineage_reports(reported) is False
    assert why_not_in_triggerer(reported) == without_openlineage()


def test_openlineage_selective_enable_decides_per_task(openlineage_on):
    from airflow.providers.openlineage.utils.selective_enable import enable_lineage

    openlineage_on.setenv("AIRFLOW__OPENLINEAGE__SELECTIVE_ENABLE", "True")
    reported, quiet = lineage_dag()
    enable_lineage(reported)
    assert (openlineage_reports(reported), openlineage_reports(quiet)) == (True, False)
    assert why_not_in_triggerer(reported) == OPENLINEAGE_REASON
    assert why_not_in_triggerer(quiet) == without_openlineage()


def test_the_defer_line_and_the_line_before_it_name_openlineage(openlineage_on, capsys):
    reported, _ = lineage_dag()
    pushed: dict[str, object] = {}
    ti = SimpleNamespace(dag_id="lineage", run_id="r", task_id="reported", map_index=-1, try_number=1)
    ti.xcom_push = lambda key, value: pushed.update({key: value})  # on 3.0 the deferring try is kept in XCom
    context = {"ti": ti}
    ending = finish_for(reported, context, dict)
    assert (ending.finish, ending.finish_kwarg()) == (None, None)
    assert ending.describe() == f"then the task resumes on a worker: {OPENLINEAGE_REASON}"
    out = plain(capsys.readouterr().out)
    assert f"The task resumes on a worker after its run, not in the triggerer: {OPENLINEAGE_REASON}" in out
    with pytest.raises(TaskDeferred) as deferred:
        reported._defer(run(status="RUNNING"), 0.0, reported.polling, context)
    assert deferred.value.trigger.finish is None  # the trigger will not end the task
    out = plain(capsys.readouterr().out)
    assert (
        f"Deferring: the triggerer waits for Alta todayNews 1.0.1 run r-1 then the task resumes on a worker: "
        f"{OPENLINEAGE_REASON}"
    ) in out


def test_the_openlineage_check_runs_at_execute_time_only():
    """A DAG file's parse imports the operator and builds tasks: nothing of OpenLineage is imported then."""
    script = (
        "import sys, datetime\n"
        "from airflow.sdk import DAG\n"
        "before = {m for m in sys.modules if 'openlineage' in m}\n"
        "from airflow_provider_alta.operators.alta import AltaRunWorkflowOperator\n"
        "from airflow_provider_alta.sensors.alta import AltaWorkflowRunSensor\n"
        "with DAG('d', schedule=None, start_date=datetime.datetime(2026, 1, 1)):\n"
        "    AltaRunWorkflowOperator(task_id='t', input={}, deferrable=True)\n"
        "    AltaWorkflowRunSensor(task_id='s', workflow_run_id='r-1', deferrable=True)\n"
        "print(sorted({m for m in sys.modules if 'openlineage' in m} - before))\n"
    )
    env = {**os.environ, "AIRFLOW__OPENLINEAGE__TRANSPORT": FILE_TRANSPORT}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
