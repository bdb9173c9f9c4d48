"""DAGs of the production-shape suite (tests/distributed): volume, failover, lost workers, webhooks, budget, and a
batch whose worker process is killed."""

from __future__ import annotations

import datetime
from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_alta.operators.alta import AltaRunWorkflowOperator
from airflow_provider_alta.operators.batch import AltaBatchOperator

START = datetime.datetime(2026, 1, 1)
RETRY = {"retries": 1, "retry_delay": datetime.timedelta(seconds=1)}

#: 100 deferred runs of 5 to 60 s (the emulator reads each run's duration from its input).
VOLUME = [{"seconds": 5 + (index * 37) % 56} for index in range(100)]

with DAG("dist_volume", schedule=None, start_date=START, catchup=False, max_active_tasks=128) as volume:
    AltaRunWorkflowOperator.partial(task_id="run", alta_conn_id="alta_volume", deferrable=True, timeout=900).expand(
        input=VOLUME
    )

with DAG("dist_sync", schedule=None, start_date=START, catchup=False, max_active_tasks=32) as sync_runs:
    TOPICS = [{"topic": f"Topic {index}"} for index in range(10)]
    AltaRunWorkflowOperator.partial(task_id="sync", alta_conn_id="alta_sync", timeout=900).expand(input=TOPICS)
    AltaRunWorkflowOperator.partial(task_id="run_async", alta_conn_id="alta_sync", run_async=True, timeout=900).expand(
        input=TOPICS
    )

#: One key with a 1,000 requests per hour limit, waited on by 96 deferred tasks and 4 in workers.
BUDGET = [{"seconds": 5 + (index * 7) % 16} for index in range(100)]

with DAG("dist_budget", schedule=None, start_date=START, catchup=False, max_active_tasks=128) as budget:
    AltaRunWorkflowOperator.partial(
        task_id="deferred", alta_conn_id="alta_budget", deferrable=True, timeout=1800, **RETRY
    ).expand(input=BUDGET[:96])
    AltaRunWorkflowOperator.partial(
        task_id="in_worker", alta_conn_id="alta_budget", run_async=True, timeout=1800, **RETRY
    ).expand(input=BUDGET[96:])

with DAG("dist_worker_loss", schedule=None, start_date=START, catchup=False) as worker_loss:
    AltaRunWorkflowOperator(task_id="sync", alta_conn_id="alta_loss", input={"topic": "Sync"}, timeout=900, **RETRY)
    AltaRunWorkflowOperator(
        task_id="run_async", alta_conn_id="alta_loss", input={"topic": "Async"}, run_async=True, timeout=900, **RETRY
    )

#: Webhook wake-up on runs of 90 s; a webhook lost to an API-server restart is caught by the fallback poll, 108-120 s
#: after the run's start (none before: a run whose webhook arrives costs one query). A task the restart interrupts
#: (its process cannot reach the API server) is retried, and reattaches to its run.
with DAG("dist_webhooks", schedule=None, start_date=START, catchup=False, max_active_tasks=64) as webhooks:
    AltaRunWorkflowOperator.partial(
        task_id="run",
        alta_conn_id="alta_webhooks",
        deferrable=True,
        airflow_webhook=True,
        webhook_fallback_interval=120,
        timeout=900,
        **RETRY,
    ).expand(input=[{"topic": f"Hook {index}"} for index in range(50)])

with DAG("dist_scheduler_restart", schedule=None, start_date=START, catchup=False, max_active_tasks=32) as restart:
    SEEDS = [{"seconds": 15 + index} for index in range(8)]
    AltaRunWorkflowOperator.partial(
        task_id="deferred", alta_conn_id="alta_restart", deferrable=True, timeout=900
    ).expand(input=SEEDS)
    AltaRunWorkflowOperator.partial(
        task_id="in_worker", alta_conn_id="alta_restart", run_async=True, timeout=900
    ).expand(input=SEEDS[:4])

#: A 2,000-item batch in one task; its results go under the stack's home (both Celery workers share this host's disk).
BATCH_ITEMS = 2000
BATCH_OUT = Path(__file__).resolve().parent.parent / "batches"

with DAG("dist_batch", schedule=None, start_date=START, catchup=False) as batch:
    AltaBatchOperator(
        task_id="batch",
        alta_conn_id="alta_batch",
        items=[{"id": f"item-{index:04d}", "topic": f"Topic {index}"} for index in range(BATCH_ITEMS)],
        key_field="id",
        output_path=f"file://{BATCH_OUT}/{{{{ run_id }}}}",
        max_active_runs=100,
        chunk_size=100,
        poll_min_interval=0.1,
        poll_max_interval=1.0,
        # Runs end by webhook; a retry learns from the deliveries the runs of the invokes a killed try sent unanswered.
        airflow_webhook=True,
        webhook_check_interval=0.2,
        webhook_fallback_interval=5.0,
        retries=6,  # three kills, and room to spare
        retry_delay=datetime.timedelta(0),
    )
