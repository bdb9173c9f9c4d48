"""DAGs only the end-to-end tests use: long runs to kill a triggerer or a worker under."""

from __future__ import annotations

import datetime

from airflow.sdk import DAG

from airflow_provider_alta.operators.alta import AltaRunWorkflowOperator

START = datetime.datetime(2026, 1, 1)

with DAG("e2e_triggerer_restart", schedule=None, start_date=START, catchup=False) as triggerer_restart:
    AltaRunWorkflowOperator(
        task_id="run", alta_conn_id="alta_slow", input={"topic": "Restart"}, deferrable=True, timeout=600
    )

with DAG("e2e_worker_loss", schedule=None, start_date=START, catchup=False) as worker_loss:
    AltaRunWorkflowOperator(
        task_id="run",
        alta_conn_id="alta_worker",
        input={"topic": "Worker"},
        run_async=True,
        timeout=600,
        retries=1,
        retry_delay=datetime.timedelta(seconds=1),
    )
