"""The DAGs of tests/operators/test_batch_operator.py: batches as a DAG author writes them. Where they write is
the ``alta_batch_out`` Variable (a test sets it per run); the CSV they read is ``alta_batch_in``."""

from __future__ import annotations

import datetime
import json

from airflow.sdk import DAG, Asset, ObjectStoragePath, task

from airflow_provider_alta.operators.batch import AltaBatchOperator

FAST = {"poll_min_interval": 0.05, "poll_max_interval": 0.5}
RETRIES = {"retries": 2, "retry_delay": datetime.timedelta(0)}
OUT = "{{ var.value.alta_batch_out }}"
#: The asset a batch's results announce (a downstream DAG would be scheduled on it).
ENRICHED = Asset(name="alta_batch_enriched", uri="file:///data/alta/enriched")


@task
def tickets() -> list[dict]:
    return [{"id": f"t-{n}", "topic": f"Ticket {n}"} for n in range(12)]


@task
def loaded(manifest: dict) -> int:
    """A downstream load: reads every result row the manifest lists."""
    rows = 0
    for uri in manifest["results"]:
        with ObjectStoragePath(uri).open("r") as data:
            # readlines(): Airflow 3.0's file objects cannot be iterated.
            rows += sum(1 for line in data.readlines() if json.loads(line)["status"] == "SUCCEED")
    return rows


@task.alta_batch(output_path=OUT + "/decorated", key_field="id", **FAST)
def from_function(prefix: str) -> list[dict]:
    return [{"id": n, "topic": f"{prefix} {n}"} for n in range(5)]


with DAG("t_batch", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as t_batch:
    from_xcom = AltaBatchOperator(
        task_id="from_xcom", items=tickets(), key_field="id", output_path=OUT + "/from_xcom", max_active_runs=4, **FAST
    )
    loaded(from_xcom.output)
    AltaBatchOperator(
        task_id="from_file",
        input_path="{{ var.value.alta_batch_in }}",
        output_path="file://" + OUT + "/from_file",
        key_field="id",
        chunk_size=4,
        outlets=[ENRICHED],
        **FAST,
    )
    from_function("Markets")


with DAG("t_batch_refused", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as refused:
    AltaBatchOperator(
        task_id="too_many_refused",
        items=[{"topic": "fine"}, {"subject": "no topic"}, {"subject": "none either"}, {"topic": "fine too"}],
        output_path=OUT + "/refused",
        max_failed_items=1,
        max_active_runs=1,
        **RETRIES,
        **FAST,
    )


with DAG("t_batch_flaky", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as flaky:
    AltaBatchOperator(
        task_id="flaky_then_fine",
        items=[{"topic": f"T{n}"} for n in range(6)],
        output_path=OUT + "/flaky",
        alta_conn_id="alta_flaky",
        max_active_runs=2,
        **RETRIES,
        **FAST,
    )


with DAG("t_batch_webhook", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as webhook:
    AltaBatchOperator(
        task_id="by_webhook",
        items=[{"id": f"w-{n}", "topic": f"Webhook {n}"} for n in range(8)],
        key_field="id",
        output_path=OUT + "/webhook",
        max_active_runs=4,
        airflow_webhook=True,
        webhook_check_interval=0.1,
        webhook_fallback_interval=30.0,
        **FAST,
    )


with DAG(
    "t_batch_webhook_lost", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False
) as webhook_lost:
    AltaBatchOperator(
        task_id="deliveries_lost",
        items=[{"topic": f"Lost {n}"} for n in range(4)],
        output_path=OUT + "/lost",
        max_active_runs=4,
        airflow_webhook=True,
        webhook_check_interval=0.1,
        webhook_fallback_interval=0.5,
        **FAST,
    )
