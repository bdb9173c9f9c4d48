"""A newcomer's first hour, scripted, from a fresh clone: ``make demo``; start the emulator and paste its
connection line; run the README's DAGs with ``airflow dags test``; make the usual mistakes.

Each mistake must end in a message that names the fix and never shows the key. The README's user test
with the ``alta_emulator`` fixture, run as the README shows (test home, ``airflow db migrate``), is
tests/test_readme.py; the demo's failure report is checked in tests/operators/test_retry_classes.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airflow_provider_alta._core.ratelimit import reset_budgets
from airflow_provider_alta.exceptions import AltaError
from airflow_provider_alta.failures import for_airflow
from airflow_provider_alta.hooks.alta import AltaHook
from airflow_provider_alta.models import RunStatus
from airflow_provider_alta.operators.alta import AltaRunWorkflowOperator
from airflow_provider_alta.testing.workflows import DEFAULT_API_KEY
from tests.emulator_cli import Emulator
from tests.test_readme import python_blocks, user_env

WRONG_KEY = "sk-newcomer-guessed-key-93e1"
ROOT = Path(__file__).resolve().parent.parent
README_DAGS = {
    "alta_news": "dags/alta_news.py",
    "alta_news_taskflow": "dags/alta_news_taskflow.py",
    "alta_news_mapped": "dags/alta_news_mapped.py",
}
HEADLINES = """Returned value was: ["Markets: the day's leading story", 'Markets: what analysts are watching']"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """``make demo``, started before the project below is set up so that the two run side by side (the demo
    has its own Airflow home and emulator). ``make demo`` (re)installs ./.venv, then runs scripts/demo.py with
    its python: this runs the same script with this suite's interpreter, which is that venv's."""
    tmp = tmp_path_factory.mktemp("demo")
    env = {**user_env(tmp), "TMPDIR": str(tmp)}  # where the demo makes, and must remove, its throwaway home
    with open(tmp / "out.txt", "w") as out:
        process = subprocess.Popen(
            [sys.executable, "scripts/demo.py"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    yield process, tmp
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def project(demo, tmp_path_factory) -> Iterator[tuple[Path, dict[str, str]]]:
    """The README's two DAG files in ``dags/``, the emulator started and its printed line pasted into the
    shell, and an Airflow home of their own, migrated once."""
    root = tmp_path_factory.mktemp("project")
    files, _ = python_blocks()
    for path in README_DAGS.values():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(files[path])
    started = Emulator("--quiet")
    try:
        name, value = started.connection
        env = user_env(root)
        env.update(
            {name: value},
            AIRFLOW_HOME=str(root / "airflow-home"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_FOLDER=str(root / "dags"),
        )
        subprocess.run(["airflow", "db", "migrate"], cwd=root, env=env, check=True, capture_output=True, timeout=300)
        yield root, env
    finally:
        started.stop()


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    started = Emulator("--quiet")
    reset_budgets()
    yield started
    if started.process.poll() is None:
        started.stop()


def message_of(action: Callable[[], object]) -> str:
    """What the task log would say: the error as the operator raises it to Airflow."""
    with pytest.raises(AltaError) as err:
        action()
    return str(for_airflow(err.value))


def test_the_first_hour(emulator, monkeypatch):
    # The pasted line works as printed.
    name, value = emulator.connection
    monkeypatch.setenv(name, value)
    assert AltaHook().invoke_workflow({"topic": "first"}, is_async=True).status is RunStatus.PENDING
    port = emulator.url.rsplit(":", 1)[1]

    # 1. A guessed key.
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", json.dumps({**json.loads(value), "password": WRONG_KEY}))
    wrong_key = message_of(lambda: AltaHook().invoke_workflow({"topic": "x"}))
    assert "rejected the API key" in wrong_key and "API Key field" in wrong_key

    # 2. A connection id nobody created.
    missing = message_of(lambda: AltaHook("alta_news").invoke_workflow({"topic": "x"}))
    assert "'alta_news' does not exist" in missing and "AIRFLOW_CONN_ALTA_NEWS=" in missing

    # 3. An input that is not JSON.
    not_json = message_of(lambda: AltaRunWorkflowOperator(task_id="news", input="topic: AI"))
    assert "JSON" in not_json and "pass a dict" in not_json

    # 4. The URI form, with a port (it used to be dropped).
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", f"alta://:{DEFAULT_API_KEY}@127.0.0.1:{port}")
    assert AltaHook().invoke_workflow({"topic": "uri"}, is_async=True).status is RunStatus.PENDING

    # 5. The emulator is not running any more.
    emulator.stop()
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", f"alta://:{WRONG_KEY}@127.0.0.1:{port}?max_retries=0")
    down = message_of(lambda: AltaHook().invoke_workflow({"topic": "x"}))
    assert f"http://127.0.0.1:{port}/v1/workflow/invoke" in down
    assert "connection refused (is the server running there?)" in down and "Base URL" in down

    for message in (wrong_key, missing, not_json, down):
        assert WRONG_KEY not in message and DEFAULT_API_KEY not in message


@pytest.mark.cli
@pytest.mark.parametrize("dag_id", README_DAGS)
def test_airflow_dags_test_runs_the_readme_dags(project, dag_id):
    root, env = project
    done = subprocess.run(
        ["airflow", "dags", "test", dag_id], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert re.search(rf"DagRun Finished: dag_id={dag_id},.* state=success,", out), out[-4000:]
    assert "Deferring: the triggerer waits for Alta todayNews 1.0.1 run" in out, out[-4000:]
    # A green run says nothing at error level (Airflow logs each missing XCom a task asks for as one).
    errors = [line for line in out.splitlines() if re.search(r"\[(error|critical)\s*\]|\bERROR\b", line)]
    assert not errors, "\n".join(errors[:5])
    if dag_id == "alta_news_mapped":
        assert "3 runs, 2.0784 credits" in out, out[-4000:]  # the metadata XComs, pulled by map index
    else:
        assert HEADLINES in out, out[-4000:]  # the headlines task's value, as the task log shows it
    # Airflow 3.0's `dags test` prints its task supervisor's debug messages, among them each secret it is asked to
    # mask, in clear ("MaskSecret(value=…)"; the README's version table says so). Those lines are Airflow's own.
    assert DEFAULT_API_KEY not in "\n".join(line for line in out.splitlines() if "MaskSecret(value=" not in line)
    assert not (root / "airflow").exists()  # HOME is the project: nothing fell back to ~/airflow


@pytest.mark.cli
def test_make_demo(demo):
    process, tmp = demo
    assert process.wait(timeout=300) == 0, (tmp / "out.txt").read_text()[-4000:]
    out = (tmp / "out.txt").read_text()
    assert "Started the Alta emulator at http://127.0.0.1:" in out and "DAG run success in" in out, out
    assert "Workflow  todayNews 1.0.1, run " in out and "Status    SUCCEED in 3.0 s" in out, out
    assert "Output:\n  * Markets: the day's leading story\n" in out, out
    assert "Loaded    2 rows into a throwaway SQLite file (set ALTA_ETL_DB to keep it)" in out, out
    assert "Enriched  20 of 20 products in one task (20 paid runs, 13.8560 credits" in out, out
    assert "Loaded    20 rows into the table product_enrichment of a throwaway SQLite file" in out, out
    # No path to a file that is gone: the throwaway home, with its news.sqlite, is removed, and not printed.
    assert "news.sqlite" not in out and "alta-demo-airflow-" not in out
    assert not list(tmp.glob("alta-demo-airflow-*"))
