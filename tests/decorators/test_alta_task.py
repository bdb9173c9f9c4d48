"""``@task.alta`` against the emulator with dag.test(): input from the function, output as the task's value."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import DAGS
from tests.dag_runner import plain

pytestmark = pytest.mark.usefixtures("airflow_db", "alta_conn")


def test_registered_as_task_alta():
    from airflow.sdk import task

    from airflow_provider_alta.decorators.alta import alta_task

    assert task.alta is alta_task


def test_taskflow_dag(alta_emulator, capsys):
    alta_emulator.configure(duration=0.5)
    if str(DAGS) not in sys.path:
        sys.path.insert(0, str(DAGS))
    from alta_taskflow_dags import t_taskflow

    dag_run = t_taskflow.test()
    out = plain(capsys.readouterr().out)
    tis = {ti.task_id: ti for ti in dag_run.get_task_instances()}

    def xcom(task_id, key="return_value"):
        return tis[task_id].xcom_pull(task_ids=task_id, key=key)

    # Deferred, fed by an upstream task, its output consumed downstream.
    assert tis["today_news"].state == "success"
    assert xcom("today_news")["news"][0]["title"] == "Upstream: the day's leading story"
    assert xcom("count_news") == 2
    assert xcom("today_news", "workflow_run_id")
    assert "Deferring: the triggerer waits" in out
    # A context key and a templated operator option.
    assert tis["news_for_run"].state == "success"
    assert xcom("news_for_run")["news"][0]["title"] == f"Run {dag_run.run_id[:6]}: the day's leading story"
    # A function that returns no object: a bad input, failed at once, nothing sent.
    assert (tis["not_an_object"].state, tis["not_an_object"].try_number) == ("failed", 1)
    assert "input must be a JSON object" in out
    assert alta_emulator.invoke_count() == 2


def test_input_is_the_function_s_job():
    from airflow.sdk import task

    with pytest.raises(TypeError, match="takes its input from the function"):

        @task.alta(input={"topic": "x"})
        def wrong() -> dict:
            return {}

        wrong()
