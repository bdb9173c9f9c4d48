"""A user's DAG, written as the README and the examples write one, passes strict type checkers.

Template fields take what Airflow lets a DAG author pass there: a value, a Jinja string, or an ``XComArg`` (an
upstream task's ``.output``, a ``@task`` function's result). Typed with the rendered type alone, mypy ``--strict``
and pyright's strict mode rejected the provider's own pattern ``AltaWorkflowRunSensor(workflow_run_id=start.output)``.

The DAG stays clear of what Airflow's own annotations reject in strict mode (an ``XComArg`` passed to a TaskFlow
function whose parameter is typed, ``params={...}`` under pyright, ``a >> [b, c]`` as a statement under pyright):
it checks the provider's annotations, not Airflow's. Each checker reads Airflow's sources on a cold cache, which takes
longer than the unit tier allows (``cli`` tier).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

USER_DAG = '''
"""Run the news workflow, wait for it elsewhere, hand its output on."""

from __future__ import annotations

import datetime
from typing import Any

from airflow.sdk import DAG, chain, task

from airflow_provider_alta.decorators.alta import alta_task
from airflow_provider_alta.operators.alta import AltaRunWorkflowOperator
from airflow_provider_alta.sensors.alta import AltaWorkflowRunSensor


@task
def build_input() -> dict[str, Any]:
    return {"topic": "Markets"}


@task
def pick_user() -> str:
    return "analyst-7"


@task
def output_schema() -> dict[str, Any]:
    return {"type": "object", "required": ["news"]}


@task
def callbacks() -> list[dict[str, Any]]:
    return [{"method": "POST", "url": "https://hooks.example.com/alta"}]


@task
def one_callback() -> dict[str, Any]:
    return {"method": "POST", "url": "https://hooks.example.com/alta"}


with DAG("alta_typed", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False):
    start = AltaRunWorkflowOperator(
        task_id="start",
        input=build_input(),
        user_id=pick_user(),
        output_schema=output_schema(),
        webhooks=callbacks(),
        wait_for_completion=False,
    )
    wait = AltaWorkflowRunSensor(task_id="wait", workflow_run_id=start.output, deferrable=True, timeout=3600)
    follow_up = AltaRunWorkflowOperator(
        task_id="follow_up",
        input=wait.output,
        alta_conn_id="{{ var.value.alta_conn_id }}",
        user_id="{{ dag_run.run_id }}",
        input_schema="schemas/news.json",
        webhooks=[one_callback(), {"method": "POST", "url": "{{ var.value.alta_webhook_url }}"}],
        deferrable=True,
    )
    templated = AltaRunWorkflowOperator(task_id="templated", input='{"topic": "{{ ds }}"}', output_schema=None)
    by_template = AltaWorkflowRunSensor(
        task_id="by_template",
        workflow_run_id="{{ ti.xcom_pull(task_ids='start') }}",
        alta_conn_id="{{ var.value.alta_conn_id }}",
        output_schema=output_schema(),
    )

    @task.alta(alta_conn_id="alta_default", deferrable=True)
    def today_news(topic: str) -> dict[str, Any]:
        return {"topic": topic}

    @alta_task(alta_conn_id="alta_default", user_id="{{ dag_run.run_id }}")
    def more_news(topic: str) -> dict[str, Any]:
        return {"topic": topic}

    summary = AltaRunWorkflowOperator(task_id="summary", input={"news": today_news("Markets")})
    chain(start, wait, [follow_up, templated, by_template], summary, more_news("Science"))
'''


def _user_dag(tmp_path: Path) -> Path:
    """The DAG file, with the schema file it names (it is a DAG that parses, not only one that type-checks)."""
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "news.json").write_text(json.dumps({"type": "object", "required": ["topic"]}))
    dag = tmp_path / "alta_typed.py"
    dag.write_text(USER_DAG)
    return dag


def _check(command: list[str], cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=240)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def test_the_user_dag_parses(tmp_path):
    """What the checkers read is a DAG Airflow accepts."""
    import runpy

    names = runpy.run_path(str(_user_dag(tmp_path)))
    assert names["wait"].template_fields[0] == "workflow_run_id"
    assert {"start", "wait", "follow_up", "by_template", "today_news", "more_news"} <= set(names["start"].dag.task_ids)


@pytest.mark.cli
def test_a_user_dag_passes_mypy_strict(tmp_path):
    dag = _user_dag(tmp_path)
    command = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache")]
    output = _check([*command, "--python-executable", sys.executable, "--config-file", "", str(dag)], tmp_path)
    assert "Success: no issues found in 1 source file" in output


@pytest.mark.cli
def test_a_user_dag_passes_pyright_strict(tmp_path):
    """basedpyright: pyright's checker with Node.js in its wheel (pyright's own wheel downloads Node.js first)."""
    dag = _user_dag(tmp_path)
    config = {"typeCheckingMode": "strict", "pythonVersion": f"{sys.version_info.major}.{sys.version_info.minor}"}
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(config))
    output = _check([sys.executable, "-m", "basedpyright", "--pythonpath", sys.executable, str(dag)], tmp_path)
    assert "0 errors" in output
