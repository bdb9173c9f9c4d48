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

# The first try's wait times out after 6 s of a 12 s run; the retry must reattach to the same run.
with DAG("e2e_deferred_retry", schedule=None, start_date=START, catchup=False) as deferred_retry:
    AltaRunWorkflowOperator(
        task_id="run",
        alta_conn_id="alta_retry",
        input={"topic": "Retry"},
        deferrable=True,
        timeout=6,
        retries=1,
        retry_delay=datetime.timedelta(seconds=1),
    )

# The run's first query answers 404: the first try fails, and its retry reattaches to the run instead of invoking.
with DAG("e2e_deferred_not_found", schedule=None, start_date=START, catchup=False) as deferred_not_found:
    AltaRunWorkflowOperator(
        task_id="run",
        alta_conn_id="alta_not_found",
        input={"topic": "NotFound"},
        deferrable=True,
        timeout=600,
        retries=1,
        retry_delay=datetime.timedelta(seconds=1),
    )

#: Twenty runs per DAG: detection delay and queries, webhook against polling alone.
TOPICS = [{"topic": f"Topic {index}"} for index in range(20)]

with DAG("e2e_webhook", schedule=None, start_date=START, catchup=False, max_active_tasks=32) as webhook:
    AltaRunWorkflowOperator.partial(
        task_id="run", alta_conn_id="alta_hooked", deferrable=True, airflow_webhook=True, timeout=600
    ).expand(input=TOPICS)

with DAG("e2e_polling", schedule=None, start_date=START, catchup=False, max_active_tasks=32) as polling:
    AltaRunWorkflowOperator.partial(task_id="run", alta_conn_id="alta_polled", deferrable=True, timeout=600).expand(
        input=TOPICS
    )

# A lost webhook is caught by the fallback poll, here after 5 s instead of the default 60 s.
for conn_id, fallback in (("alta_hook_lost", 5), ("alta_hook_dup", 60), ("alta_hook_early", 60)):
    with DAG(f"e2e_{conn_id}", schedule=None, start_date=START, catchup=False) as fault_dag:
        AltaRunWorkflowOperator(
            task_id="run",
            alta_conn_id=conn_id,
            input={"topic": "Faults"},
            deferrable=True,
            airflow_webhook=True,
            webhook_fallback_interval=fallback,
            timeout=600,
        )
    globals()[f"e2e_{conn_id}"] = fault_dag

# A deferred task ended by its trigger, a downstream task reading its XComs, and a task with outlets, which must
# resume on a worker to emit its asset event.
with DAG("e2e_end_in_triggerer", schedule=None, start_date=START, catchup=False) as end_in_triggerer:
    from airflow.sdk import Asset, task

    ended = AltaRunWorkflowOperator(
        task_id="run", alta_conn_id="alta_finish", input={"topic": "Solo"}, deferrable=True, timeout=600
    )
    with_outlets = AltaRunWorkflowOperator(
        task_id="with_outlets",
        alta_conn_id="alta_finish",
        input={"topic": "Assets"},
        deferrable=True,
        timeout=600,
        outlets=[Asset("alta_e2e_news")],
    )

    @task
    def read(ti=None) -> dict:
        # Pulled here, not passed as an argument: an argument would be stored among the rendered fields.
        keys = ("workflow_run_id", "status", "total_cost", "total_tokens", "workflow_execution_time_ms")
        pulled = {key: ti.xcom_pull(task_ids="run", key=key) for key in keys}
        return {"headline_length": len(ti.xcom_pull(task_ids="run")["headline"]), **pulled}

    ended >> read()

# The one DAG OpenLineage reports on a stack with Shape.openlineage (the stack's emission policy names it; where the
# provider has none, selective_enable reports the tasks enable_lineage() marks): its deferred task resumes on a
# worker, where the listener sends COMPLETE with the alta_run facet. Every other DAG runs as where OpenLineage is off.
with DAG("e2e_lineage", schedule=None, start_date=START, catchup=False) as lineage:
    from airflow.providers.openlineage.utils.selective_enable import enable_lineage

    enable_lineage(
        AltaRunWorkflowOperator(
            task_id="run", alta_conn_id="alta_lineage", input={"topic": "Lineage"}, deferrable=True, timeout=600
        )
    )
