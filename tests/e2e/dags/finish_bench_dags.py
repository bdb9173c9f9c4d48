"""The DAGs of ``bench/triggerer_finish.py``: 40 deferred runs of 15 s, ended in the triggerer or resumed.

``bench_warm_up`` runs first: one deferred run of 2 s that ends in the triggerer, so the triggerer pays its
one-time start-up cost (see :mod:`airflow_provider_alta._airflow.triggerer_warmup`) before the measured runs.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG

from airflow_provider_alta.operators.alta import AltaRunWorkflowOperator

START = datetime.datetime(2026, 1, 1)
TOPICS = [{"topic": f"Topic {index}"} for index in range(40)]

for dag_id, end_in_triggerer in (("bench_end_in_triggerer", True), ("bench_resume_on_worker", False)):
    with DAG(dag_id, schedule=None, start_date=START, catchup=False, max_active_tasks=40) as dag:
        AltaRunWorkflowOperator.partial(
            task_id="run",
            alta_conn_id="alta_bench",
            deferrable=True,
            end_in_triggerer=end_in_triggerer,
            timeout=600,
        ).expand(input=TOPICS)
    globals()[dag_id] = dag

with DAG("bench_warm_up", schedule=None, start_date=START, catchup=False) as bench_warm_up:
    AltaRunWorkflowOperator(
        task_id="run", alta_conn_id="alta_bench_warm_up", deferrable=True, input={"topic": "warm-up"}, timeout=600
    )
