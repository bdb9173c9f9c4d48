"""500 task instances that wait without running, for ``bench/mailbox_reads.py``.

The mapped task sits in the pool ``mailbox_bench_hold``, which the benchmark creates with no slots: its task
instances stay scheduled (a state the webhook receiver serves) for as long as the benchmark needs them.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, task

with DAG(
    "bench_mailbox_waiting", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False, max_active_tasks=1
) as bench_mailbox_waiting:

    @task(pool="mailbox_bench_hold")
    def waiting(index: int) -> None:
        """Never runs: its pool has no slots."""

    waiting.expand(index=list(range(500)))
