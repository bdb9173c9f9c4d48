"""``@task.alta``'s ``multiple_outputs``: off unless asked for, whatever the function's return annotation says."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task


def _build(**decorator_kwargs):
    """The operator a ``-> dict`` annotated ``@task.alta`` function builds (its annotation types the input)."""
    with DAG("t_alta_outputs", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):

        @task.alta(alta_conn_id="alta_default", **decorator_kwargs)
        def today_news(topic: str) -> dict:
            return {"topic": topic}

        return today_news("Markets").operator


def test_a_dict_annotation_does_not_unroll_the_output():
    assert _build().multiple_outputs is False


def test_an_explicit_multiple_outputs_is_kept():
    assert _build(multiple_outputs=True).multiple_outputs is True


def test_override_keeps_the_explicit_choice():
    with DAG("t_alta_outputs_override", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):

        @task.alta(alta_conn_id="alta_default")
        def today_news(topic: str) -> dict:
            return {"topic": topic}

        assert today_news.override(task_id="other")("Markets").operator.multiple_outputs is False
