"""Enrich a product catalogue through an Alta workflow, one paid run per product, in one task.

products.csv -> the records (``data/products.csv`` beside this file; in real life an export in object
                storage). Each row is one workflow input: ``sku``, ``name``, ``category``.
enrich       -> ``AltaBatchOperator`` runs the ``alta_enrich`` connection's workflow once per row, up to
                ``max_active_runs`` at a time, and writes one JSON Lines row per product under
                ``output_path`` (a folder per DAG run, under ``ALTA_BATCH_DIR``, default the temp dir). A retry
                or a clear skips the products done and reattaches to the runs in flight: nobody pays twice.
load         -> insert the enriched products the manifest lists into a SQLite table (path from
                ``ALTA_ETL_DB``, default in the temp dir), replacing this DAG run's rows, so a rerun loads the
                same table.

The connection ``alta_enrich`` holds the API key of the enrichment workflow (an Alta key selects its workflow).
"""

from __future__ import annotations

import datetime
import json
import os
import sqlite3
import tempfile
from pathlib import Path

from airflow.sdk import DAG, task

from airflow_provider_alta.operators.batch import AltaBatchOperator

PRODUCTS = Path(__file__).parent / "data" / "products.csv"
BATCHES = os.environ.get("ALTA_BATCH_DIR", os.path.join(tempfile.gettempdir(), "alta-batches"))
TABLE = "product_enrichment"

with DAG(
    "alta_batch_enrich",
    schedule="@daily",
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["alta", "example", "batch"],
) as dag:
    enrich = AltaBatchOperator(
        task_id="enrich",
        alta_conn_id="alta_enrich",
        input_path=PRODUCTS.as_uri(),  # a CSV, read as a stream: one workflow input per row
        key_field="sku",  # names each product in the results
        output_path=f"file://{BATCHES}/{{{{ dag.dag_id }}}}/{{{{ run_id }}}}",  # one folder per DAG run
        max_active_runs=10,
        max_failed_items=0.1,  # more than 2 of the 20 products failed: the task fails, nothing is loaded
        max_cost=50.0,  # credits for the whole catalogue
        retries=2,
    )

    @task
    def load(manifest: dict, run_id: str | None = None) -> int:
        """Insert the products the workflow enriched; the failed ones stay listed in the manifest and files."""
        from airflow.sdk import ObjectStoragePath

        rows = []
        for uri in manifest["results"]:
            with ObjectStoragePath(uri).open("r") as part:
                # readlines(), not `for line in part`: Airflow 3.0's file objects cannot be iterated; a chunk is small.
                for line in part.readlines():
                    result = json.loads(line)
                    if result["status"] == "SUCCEED":
                        output = result["output"]
                        rows.append(
                            (run_id, result["key"], output.get("description"), json.dumps(output.get("keywords"))),
                        )
        path = os.environ.get("ALTA_ETL_DB", os.path.join(tempfile.gettempdir(), "alta_news.sqlite"))
        with sqlite3.connect(path) as db:
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} "
                "(run_id TEXT, sku TEXT, description TEXT, keywords TEXT, PRIMARY KEY (run_id, sku))"
            )
            db.execute(f"DELETE FROM {TABLE} WHERE run_id = ?", (run_id,))
            db.executemany(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?)", rows)
        print(f"loaded {len(rows)} enriched products of {manifest['total']} into {path} ({TABLE})")
        return len(rows)

    load(enrich.output)
