"""The README's code runs: every Python block and every shell block is run here, or listed below with why not.

How each block is run (the harness; nothing in a block is changed):

* A Python block whose first line names a file (``# dags/alta_news.py``, ``# tests/test_alta_news.py``)
  is written to that path in a fresh project directory, as a reader would save it.
* Any other Python block is a fragment: it is executed with :data:`PRELUDE` (the imports it takes for
  granted), so it must at least build what it shows.
* Shell blocks (console, bash, sh) run only when listed in :data:`SHELL_RUN`, in README order, as one
  ``bash -e`` script in the project directory; the ones that cannot run offline or would recurse are in
  :data:`SHELL_NOT_RUN` with the reason. A block in neither list fails the test, as does a stale entry.
* JSON blocks are emulator ``--config`` files: each is read by the emulator's own loader. The emulator's
  settings table and its default workflow's refused inputs are checked against the emulator's code.
* Completion: the project's ``alta_default`` connection points at an emulator (the line ``alta-emulator``
  prints), the home is seeded with this test session's already migrated database (``airflow db migrate``
  still runs, and finds nothing to do), and every DAG file no README test imports gets a
  ``dag.test()`` of its own, so no DAG in the README goes unrun.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import DAGS

README = DAGS.parent.parent / "README.md"
PRELUDE = "from airflow_provider_alta.operators.alta import AltaRunWorkflowOperator\n"

#: Shell blocks run by the harness, by their first line, in this order (the test home is set up first).
SHELL_RUN = (
    'export AIRFLOW_HOME="$PWD/.airflow-test"        # a throwaway home for the tests',
    "AIRFLOW__CORE__TEST_CONNECTION=Enabled airflow connections test alta_default",
)
#: The local Airflow recipe, by first line: its services, then the DAG run (its own test below, as a user types it,
#: with the port 8080 of the block moved to a free one).
SHELL_LOCAL_AIRFLOW = (
    'export AIRFLOW_HOME="$PWD/airflow-home" AIRFLOW__CORE__DAGS_FOLDER="$PWD/dags" AIRFLOW__CORE__LOAD_EXAMPLES=False',
    "airflow dags unpause alta_news   # its latest daily run starts at once (catchup=False)",
)
#: Shell blocks not run, by their first line, and why.
SHELL_NOT_RUN = {
    "make demo    # run the example ETL DAG against the local Alta emulator": (
        "`make test` is this suite; `make demo` builds a venv, then runs scripts/demo.py, which "
        "tests/test_newcomer.py runs (its failure report is tested in tests/operators/test_retry_classes.py)"
    ),
    "pip install airflow-provider-alta": "installs from PyPI: needs the network (this suite runs offline)",
    'make test PYTEST_ARGS="--durations=20"': "`make test` is the suite this test is part of: it would recurse",
}

_BLOCK = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[ \t]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)
_FILE_LINE = re.compile(r"^# ((?:dags|tests)/[\w/]+\.py)$")


def blocks(lang: tuple[str, ...]) -> list[str]:
    """The README's code blocks in these languages, dedented, in order."""
    found = []
    for match in _BLOCK.finditer(README.read_text()):
        if match["lang"] in lang:
            found.append(textwrap.dedent(match["body"]))
    return found


def python_blocks() -> tuple[dict[str, str], list[str]]:
    """(path -> source of the blocks that name their file, the fragments)."""
    files: dict[str, str] = {}
    fragments: list[str] = []
    for body in blocks(("python",)):
        named = _FILE_LINE.match(body.splitlines()[0])
        if named:
            files[named[1]] = body
        else:
            fragments.append(body)
    return files, fragments


def shell_blocks() -> list[str]:
    return blocks(("console", "bash", "sh", "shell"))


def user_env(home: Path) -> dict[str, str]:
    """A user's shell: none of this suite's Airflow settings, ``home`` as HOME (nothing may fall back to
    ~/airflow), and this venv's ``airflow`` and ``pytest`` first on the PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ALTA_TESTS"))}
    env["HOME"] = str(home)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_every_block_is_run_or_listed_with_a_reason():
    firsts = [body.splitlines()[0] for body in shell_blocks()]
    listed = {*SHELL_RUN, *SHELL_LOCAL_AIRFLOW, *SHELL_NOT_RUN}
    unknown = [first for first in firsts if first not in listed]
    assert not unknown, f"README shell blocks neither run nor listed (tests/test_readme.py): {unknown}"
    stale = listed - set(firsts)
    assert not stale, f"listed in tests/test_readme.py but no longer in the README: {stale}"
    files, fragments = python_blocks()
    assert {"dags/alta_news.py", "dags/alta_news_taskflow.py", "tests/test_alta_news.py"} <= set(files)
    for source in [*files.values(), *fragments]:
        compile(source, "README.md", "exec")


def test_fragments_build_what_they_show():
    _, fragments = python_blocks()
    assert fragments
    for source in fragments:
        exec(compile(PRELUDE + source, "README.md", "exec"), {})


def section(title: str) -> str:
    """The README's text under the ``### title`` heading, up to the next heading."""
    text = README.read_text()
    start = text.index(f"\n### {title}\n")
    return text[start : text.index("\n#", start + 1)]


def test_config_file_examples_load_in_the_emulator(tmp_path):
    from airflow_provider_alta.testing.emulator import load_workflows

    examples = blocks(("json",))
    assert examples
    for number, body in enumerate(examples):
        path = tmp_path / f"workflows{number}.json"
        path.write_text(body)
        assert load_workflows(str(path)), f"README JSON block {number} holds no workflow"


def test_every_emulator_setting_is_documented():
    from dataclasses import fields

    from airflow_provider_alta.testing.workflows import WorkflowConfig

    first_cells = re.findall(r"^\| (`[^|]+)\|", section("The `--config` file"), re.M)
    documented = {name for cell in first_cells for name in re.findall(r"`(\w+)`", cell)}
    assert documented == {field.name for field in fields(WorkflowConfig)}


def test_the_default_workflow_refuses_the_inputs_the_readme_says_it_refuses():
    import json

    from airflow_provider_alta.testing.model import check_input
    from airflow_provider_alta.testing.workflows import WorkflowConfig

    refused = [json.loads(span) for span in re.findall(r"`(\{.*?\})`", section("The default workflow"))]
    assert len(refused) >= 3
    assert all(check_input(WorkflowConfig(), run_input) for run_input in refused)
    assert check_input(WorkflowConfig(), {"topic": "Markets"}) is None


@pytest.mark.cli
def test_the_readme_project_runs_as_written(alta_emulator, airflow_db, tmp_path):
    files, _ = python_blocks()
    for path, source in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(source)
    tested = {m for source in files.values() for m in re.findall(r"^from (\w+) import", source, re.M)}
    untested = [Path(p).stem for p in files if p.startswith("dags/") and Path(p).stem not in tested]
    (tmp_path / "tests" / "test_readme_harness.py").write_text(_HARNESS_TEST.format(modules=untested))
    home = tmp_path / ".airflow-test"
    home.mkdir()
    shutil.copy(airflow_db / "airflow.db", home / "airflow.db")
    by_first = {body.splitlines()[0]: body for body in shell_blocks()}
    script = "\n".join(by_first[first] for first in SHELL_RUN)
    env = user_env(tmp_path)
    env["AIRFLOW_CONN_ALTA_DEFAULT"] = alta_emulator.connection_uri()
    done = subprocess.run(
        ["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert re.search(r"\b3 passed\b", out), out[-4000:]  # the README test, and one dag.test() per other DAG file
    assert "Connection success" in out, out[-4000:]


@pytest.mark.cli
def test_the_local_airflow_recipe_runs_a_dag(alta_emulator, airflow_db, tmp_path):
    """The README's local Airflow: its four services started as written, then its DAG run, on a real scheduler."""
    import json
    import socket
    import sqlite3
    import time

    files, _ = python_blocks()
    for path, source in files.items():
        if path.startswith("dags/"):
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / path).write_text(source)
    (tmp_path / "airflow-home").mkdir()
    shutil.copy(airflow_db / "airflow.db", tmp_path / "airflow-home" / "airflow.db")  # `db migrate` finds it done
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    by_first = {body.splitlines()[0]: body for body in shell_blocks()}
    services, run = (by_first[first] for first in SHELL_LOCAL_AIRFLOW)
    env = user_env(tmp_path)
    env["AIRFLOW_CONN_ALTA_DEFAULT"] = alta_emulator.connection_uri()
    # A run of a few seconds, as real ones are. On Airflow 3.0 a trigger that fires soon after the deferral can race
    # the scheduler's handling of it and fail the resumed try (apache/airflow#71580; the README's "Airflow bugs you
    # may meet"): the README's DAG has retries, and its retry reattaches to the run (one paid run, checked below).
    alta_emulator.configure(duration=4)
    database = tmp_path / "airflow-home" / "airflow.db"
    with open(tmp_path / "services.out", "w") as out:
        # A session of its own: the services stay in this process group after the shell exits, stopped below.
        shell = subprocess.Popen(
            ["bash", "-e", "-c", services.replace("8080", port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        assert shell.wait(timeout=300) == 0, (tmp_path / "services.out").read_text()[-2000:]
        _wait_for_row(database, "SELECT dag_id FROM dag WHERE dag_id = 'alta_news'")  # the DAG is parsed
        exports = "".join(line + "\n" for line in services.splitlines() if line.startswith("export "))
        done = subprocess.run(  # the same shell as the services': their exports first
            ["bash", "-e", "-c", exports.replace("8080", port) + run],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        deadline = time.monotonic() + 240
        states: list[str] = []
        # Every run of the DAG: a test that spans midnight (UTC) meets the scheduler's run of the new day too.
        while (not states or set(states) - {"success", "failed"}) and time.monotonic() < deadline:
            time.sleep(1)
            with sqlite3.connect(database, timeout=30) as db:
                states = [state for (state,) in db.execute("SELECT state FROM dag_run WHERE dag_id = 'alta_news'")]
        logs = "".join(f"\n--- {log.name}\n{log.read_text()[-1500:]}" for log in tmp_path.glob("*.log"))
        assert states and set(states) == {"success"}, logs
        with sqlite3.connect(database, timeout=30) as db:
            (value,) = db.execute(
                "SELECT value FROM xcom WHERE dag_id = 'alta_news' AND task_id = 'headlines' AND key = 'return_value'"
            ).fetchone()
        assert json.loads(value) == ["Markets: the day's leading story", "Markets: what analysts are watching"]
        assert alta_emulator.invoke_count() == len(states)  # one paid run per DAG run, whatever its retries
    finally:
        _stop_group(shell.pid)


def _wait_for_row(database: Path, query: str, timeout: float = 120) -> None:
    import sqlite3
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(database, timeout=30) as db:
            if db.execute(query).fetchone():
                return
        time.sleep(0.5)
    raise AssertionError(f"no row after {timeout} s: {query}")


def _stop_group(group: int) -> None:
    """SIGTERM to every process of the group, as the README's ``kill`` does; SIGKILL to what is left after 30 s."""
    import signal
    import time

    try:
        os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            os.killpg(group, 0)
            time.sleep(0.5)
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass


_HARNESS_TEST = """
import os

import pytest


@pytest.mark.parametrize("module", {modules!r})
def test_readme_dag_runs(module, alta_emulator, monkeypatch):
    from airflow.models.dagbag import DagBag

    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", alta_emulator.connection_uri())
    alta_emulator.configure(duration=0.5)
    path = os.path.join(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], module + ".py")
    bag = DagBag(dag_folder=path)
    assert not bag.import_errors and bag.dags
    alta_tasks = 0
    for dag in bag.dags.values():
        dag_run = dag.test()
        assert dag_run.state == "success"
        alta_tasks += sum("Alta" in (ti.operator or "") for ti in dag_run.get_task_instances())
    assert alta_emulator.invoke_count() == alta_tasks > 0  # one paid run per Alta task instance
"""
