"""A daily ETL step powered by an Alta workflow, waiting in the triggerer.

extract  -> the topics of the day (here a fixed list; in real life a query)
run      -> the ``todayNews`` workflow, started on a worker and awaited by the
            triggerer (``deferrable=True``), so no worker slot is held while
            the AI pipeline runs. The output must match ``NEWS_SCHEMA`` and the
            run may cost at most ``max_cost`` credits, else the task fails
            before anything malformed or overpriced is loaded.
load     -> append the news items to a SQLite table (path from the
            ``ALTA_ETL_DB`` environment variable, default in the temp dir).

A retry never pays twice: the run id is stored before waiting, and a retry
reattaches to it.
"""

from __future__ import annotations

import datetime
import os
import sqlite3
import tempfile

from airflow.sdk import DAG, task

from airflow_provider_alta.operators.alta import AltaRunWorkflowOperator

NEWS_SCHEMA = {
    "type": "object",
    "required": ["news"],
    "properties": {
        "news": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["title", "summary"],
                "properties": {"title": {"type": "string"}, "summary": {"type": "string"}},
            },
        }
    },
}

with DAG(
    "alta_deferrable_etl",
    schedule="@daily",
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["alta", "example"],
) as dag:

    @task(multiple_outputs=False)  # the dict is the workflow's whole input: one XCom, not one per key
    def extract() -> dict:
        return {"topic": "Markets"}

    run = AltaRunWorkflowOperator(
        task_id="summarise_news",
        input=extract(),
        deferrable=True,
        timeout=3600,
        output_schema=NEWS_SCHEMA,
        max_cost=5.0,
    )

    @task
    def load(output: dict, ds: str | None = None) -> int:
        path = os.environ.get("ALTA_ETL_DB", os.path.join(tempfile.gettempdir(), "alta_news.sqlite"))
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE IF NOT EXISTS news (day TEXT, title TEXT, summary TEXT, media TEXT)")
            rows = [(ds, n["title"], n["summary"], n.get("media")) for n in output["news"]]
            db.executemany("INSERT INTO news VALUES (?, ?, ?, ?)", rows)
        print(f"loaded {len(rows)} news items into {path}")
        return len(rows)

    load(run.output)
