"""DAGs of the spend view's browser test: quick runs with known costs, one of them FAILED."""

from __future__ import annotations

import datetime

from airflow.sdk import DAG

from airflow_provider_alta.operators.alta import AltaRunWorkflowOperator

START = datetime.datetime(2026, 1, 1)

with DAG("e2e_spend", schedule=None, start_date=START, catchup=False) as spend:
    AltaRunWorkflowOperator.partial(task_id="news", alta_conn_id="alta_spend").expand(
        input=[{"topic": f"Spend {i}"} for i in range(3)]
    )
    AltaRunWorkflowOperator(task_id="fails", alta_conn_id="alta_spend_fail", input={"topic": "Spend"})

with DAG("e2e_spend_other", schedule=None, start_date=START, catchup=False) as spend_other:
    AltaRunWorkflowOperator(task_id="digest", alta_conn_id="alta_spend", input={"topic": "Other"})
