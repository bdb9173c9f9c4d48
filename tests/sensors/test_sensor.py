"""AltaWorkflowRunSensor, poke and deferred, in real DAG runs."""

from __future__ import annotations

import pytest

from airflow_provider_alta.exceptions import AltaValidationError
from airflow_provider_alta.sensors.alta import AltaWorkflowRunSensor
from tests.dag_runner import plain, run_dag

pytestmark = pytest.mark.usefixtures("airflow_db", "alta_conn")


@pytest.mark.parametrize("dag_id", ["t_sensor_deferred", "t_sensor_poke"])
def test_operator_then_sensor(alta_emulator, dag_id):
    alta_emulator.configure(duration=1.0)
    result = run_dag(dag_id)
    assert result.state == "success"
    run_id = result.xcom("start")
    assert result.xcom("wait") == alta_emulator.run(run_id)["body"]["output"]
    assert result.xcom("wait", "workflow_run_id") == run_id
    assert result.xcom("wait", "status") == "SUCCEED"
    assert alta_emulator.invoke_count() == 1


def test_failed_run_fails_sensor(alta_emulator, capsys):
    alta_emulator.configure(duration=0.3, outcome="fail")
    result = run_dag("t_sensor_poke")
    assert result.ti("wait").state == "failed"
    assert "ended FAILED" in plain(capsys.readouterr().out)


def test_failed_run_with_soft_fail_skips(alta_emulator):
    alta_emulator.configure(duration=0.3, outcome="fail")
    result = run_dag("t_sensor_soft_fail")
    assert result.ti("wait").state == "skipped"


def test_failed_run_deferred(alta_emulator):
    alta_emulator.configure(duration=0.3, outcome="fail")
    result = run_dag("t_sensor_deferred")
    assert result.ti("wait").state == "failed"


@pytest.mark.parametrize("duration", [0.0, 3.0])
def test_failed_run_deferred_with_soft_fail_skips(alta_emulator, duration):
    """Both ways a deferrable sensor can see the failure: before deferring, and from the trigger."""
    alta_emulator.configure(duration=duration, outcome="fail")
    result = run_dag("t_sensor_deferred_soft_fail")
    assert result.ti("wait").state == "skipped"


@pytest.mark.parametrize("run_id", ["", "  "])
def test_empty_run_id_rejected(alta_emulator, run_id):
    with pytest.raises(AltaValidationError, match="workflow_run_id"):
        AltaWorkflowRunSensor(task_id="s", workflow_run_id=run_id)
    assert alta_emulator.request_count() == 0
