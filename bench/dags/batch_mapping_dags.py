"""The DAGs of ``bench/batch_vs_mapping.py``: the same items as one batch task and as mapped deferrable tasks.

``ALTA_BENCH_ITEMS`` items (1,000 by default), each ``{"id": "k<n>", "topic": "Topic <n>"}``, written in the DAG
as a literal list on both sides. ``ALTA_BENCH_TIME_SCALE`` scales the polling bounds the way the emulator scales
the workflow's durations, so both sides poll on the schedule a real workflow of that length gets.

* ``bench_items_batch``: one ``AltaBatchOperator`` (connection ``alta_bench_batch``), ``max_active_runs`` 50.
* ``bench_items_mapped``: ``AltaRunWorkflowOperator.partial(deferrable=True).expand(input=...)`` (connection
  ``alta_bench_mapped``): the cheapest mapping a user can write, its worker slot freed while the run goes on.
* ``bench_items_warm_up``: one deferred run, so the triggerer has paid its one-time start-up before either side.
"""

from __future__ import annotations

import datetime
import os

from airflow.sdk import DAG

from airflow_provider_alta.operators.alta import AltaRunWorkflowOperator
from airflow_provider_alta.operators.batch import AltaBatchOperator

START = datetime.datetime(2026, 1, 1)
ITEMS = [{"id": f"k{n}", "topic": f"Topic {n}"} for n in range(int(os.environ.get("ALTA_BENCH_ITEMS", "1000")))]
SCALE = float(os.environ.get("ALTA_BENCH_TIME_SCALE", "0.2"))
BATCHES = os.environ.get("ALTA_BATCH_DIR", "/tmp/alta-bench-batches")
#: Both sides alike: a try lost to Airflow's stale-executor-event race (apache/airflow#71580) reattaches.
RETRIES = {"retries": 2, "retry_delay": datetime.timedelta(seconds=1)}

with DAG("bench_items_batch", schedule=None, start_date=START, catchup=False) as bench_items_batch:
    AltaBatchOperator(
        task_id="batch",
        alta_conn_id="alta_bench_batch",
        items=ITEMS,
        key_field="id",
        output_path=f"file://{BATCHES}/{{{{ run_id }}}}",
        max_active_runs=50,
        poll_min_interval=1.0 * SCALE,
        poll_max_interval=60.0 * SCALE,
        **RETRIES,
    )

with DAG(
    "bench_items_mapped", schedule=None, start_date=START, catchup=False, max_active_tasks=32
) as bench_items_mapped:
    AltaRunWorkflowOperator.partial(
        task_id="run",
        alta_conn_id="alta_bench_mapped",
        deferrable=True,
        poll_min_interval=1.0 * SCALE,
        poll_max_interval=300.0 * SCALE,
        timeout=3600,
        **RETRIES,
    ).expand(input=ITEMS)

with DAG("bench_items_warm_up", schedule=None, start_date=START, catchup=False) as bench_items_warm_up:
    AltaRunWorkflowOperator(
        task_id="run", alta_conn_id="alta_bench_warm_up", deferrable=True, input={"topic": "warm-up"}, timeout=600
    )
