"""Run the ``todayNews`` Alta workflow once, synchronously, and use its output downstream.

The simplest use: one request, the task blocks until the run ends (fine for
workflows that take seconds), and ``run.output`` is the workflow's End-node
output, here ``{"news": [{"title", "summary", "media"}, ...]}``.

Needs the connection ``alta_default`` (type ``alta``: API key in the password,
base URL in the host).
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, task

from airflow_provider_alta.operators.alta import AltaRunWorkflowOperator

with DAG(
    "alta_sync_invoke",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    params={"topic": "Technology"},
    tags=["alta", "example"],
) as dag:
    news = AltaRunWorkflowOperator(task_id="today_news", input={"topic": "{{ params.topic }}"})

    @task
    def headlines(output: dict) -> list[str]:
        titles = [item["title"] for item in output["news"]]
        for title in titles:
            print(f"- {title}")
        return titles

    headlines(news.output)
