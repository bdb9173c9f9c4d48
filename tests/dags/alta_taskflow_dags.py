"""The DAG of tests/decorators/test_alta_task.py: ``@task.alta`` in the ways a DAG author writes it."""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, task

FAST = {"poll_min_interval": 0.2, "poll_max_interval": 0.5}


@task.alta(deferrable=True, output_schema={"type": "object", "required": ["news"]}, **FAST)
def today_news(topic: str) -> dict:
    return {"topic": topic}


@task.alta(user_id="{{ dag.dag_id }}", retries=2)
def news_for_run(prefix: str, run_id: str | None = None) -> dict:
    """Asks for a context key, as any TaskFlow function may."""
    return {"topic": f"{prefix} {run_id[:6] if run_id else '?'}"}


@task.alta(retries=2)
def not_an_object() -> list:
    return ["a", "list"]


@task
def pick_topic() -> str:
    return "Upstream"


@task
def count_news(news: dict) -> int:
    return len(news["news"])


with DAG("t_taskflow", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as t_taskflow:
    count_news(today_news(pick_topic()))
    news_for_run("Run")
    not_an_object()
