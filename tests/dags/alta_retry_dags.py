"""The DAG of tests/operators/test_retry_classes.py: one task per kind of failure, each allowed two retries."""

from __future__ import annotations

import datetime

from airflow.sdk import DAG

from airflow_provider_alta.operators.alta import AltaRunWorkflowOperator
from airflow_provider_alta.sensors.alta import AltaWorkflowRunSensor

FAILING_KEY = "alta-key-of-a-failing-workflow"
SLOW_KEY = "alta-key-of-a-slow-workflow"
RETRIES = {"retries": 2, "retry_delay": datetime.timedelta(0)}

with DAG("t_retry_classes", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as retry_dag:
    AltaRunWorkflowOperator(task_id="rejected_key", input={"topic": "AI"}, alta_conn_id="alta_wrong_key", **RETRIES)
    AltaRunWorkflowOperator(task_id="refused_input", input={"topic": ""}, **RETRIES)
    AltaRunWorkflowOperator(task_id="broken_contract", input={"topic": "AI"}, max_cost=0.1, **RETRIES)
    AltaRunWorkflowOperator(task_id="failed_run", input={"topic": "AI"}, alta_conn_id="alta_failing", **RETRIES)
    AltaRunWorkflowOperator(task_id="unknown_outcome", input={"topic": "AI"}, alta_conn_id="alta_slow", **RETRIES)
    AltaRunWorkflowOperator(
        task_id="unknown_outcome_retried",
        input={"topic": "AI"},
        alta_conn_id="alta_slow",
        retry_on_unknown_outcome=True,
        **RETRIES,
    )

with DAG("t_retry_deferred", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as deferred_dag:
    # The test makes Alta reject the key on the triggerer's query only: the invoke on the worker passes.
    AltaRunWorkflowOperator(task_id="rejected_while_deferred", input={"topic": "AI"}, deferrable=True, **RETRIES)

with DAG("t_retry_deferred_not_found", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as (
    deferred_not_found_dag
):
    # The test has Alta answer the run's first query 404 (the trigger's): try 1 fails, try 2 reattaches to the run.
    AltaRunWorkflowOperator(
        task_id="not_found_while_deferred", input={"topic": "AI"}, deferrable=True, poll_min_interval=0.2, **RETRIES
    )

with DAG(
    "t_retry_sensor_not_found", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False
) as sensor_not_found_dag:
    # The test has Alta answer the trigger's first query 404: the sensor's try 1 fails, try 2 looks again.
    started = AltaRunWorkflowOperator(task_id="start", input={"topic": "AI"}, wait_for_completion=False)
    AltaWorkflowRunSensor(
        task_id="wait", workflow_run_id=started.output, deferrable=True, poll_min_interval=0.2, **RETRIES
    )
