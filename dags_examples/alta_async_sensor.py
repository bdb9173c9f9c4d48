"""Start an Alta run, get its result by webhook elsewhere, and wait for it with a deferrable sensor.

``start`` invokes the workflow asynchronously and returns the run id at once
(``wait_for_completion=False``). Alta also calls the webhook when the run ends,
for any system of yours that wants it; its ``Authorization`` header is a
secret (from the Airflow Variable ``alta_webhook_token``) and is masked in
logs and rendered fields. ``wait`` defers to the triggerer until the run ends
and returns its output.

Set the Variables ``alta_webhook_url`` (where Alta should call) and
``alta_webhook_token`` before enabling this DAG.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG

from airflow_provider_alta.operators.alta import AltaRunWorkflowOperator
from airflow_provider_alta.sensors.alta import AltaWorkflowRunSensor

with DAG(
    "alta_async_sensor",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["alta", "example"],
) as dag:
    start = AltaRunWorkflowOperator(
        task_id="start",
        input={"topic": "Science"},
        wait_for_completion=False,
        webhooks=[
            {
                "method": "POST",
                "url": "{{ var.value.alta_webhook_url }}",
                "headers": {"Authorization": "Bearer {{ var.value.alta_webhook_token }}"},
            }
        ],
    )
    wait = AltaWorkflowRunSensor(
        task_id="wait",
        workflow_run_id=start.output,
        deferrable=True,
        timeout=3600,
    )
