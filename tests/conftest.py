"""Test settings: a throwaway AIRFLOW_HOME set before Airflow is imported."""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: This test session's directory: the process that starts the session makes it (and removes it at the end); its
#: pytest-xdist workers, and any process a test starts, inherit it.
_OWNS_SESSION_DIR = "ALTA_TESTS_SESSION_DIR" not in os.environ
_SESSION = Path(os.environ.setdefault("ALTA_TESTS_SESSION_DIR", tempfile.mkdtemp(prefix="alta-tests-")))
#: One Airflow home per test process (each worker its own), however often this module is imported.
_HOME = _SESSION / os.environ.get("PYTEST_XDIST_WORKER", "main")
_HOME.mkdir(exist_ok=True)
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
DAGS = Path(__file__).parent / "dags"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"


def _info_level_structlog() -> None:
    """Airflow 3.0's ``dag.test()`` leaves structlog unconfigured, so it prints every debug message of the
    in-process supervisor (each secret-masking request with the secret in it). A real task logs at the
    configured level; so do the tests."""
    import logging

    import structlog

    if not structlog.is_configured():
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))


_info_level_structlog()
os.environ.pop("AIRFLOW_CONN_ALTA_DEFAULT", None)

if os.environ.get("ALTA_TESTS_EXPECT_INSTALLED"):
    # The version matrix tests the built wheel: the package must come from site-packages, not a source tree.
    import airflow_provider_alta

    if "site-packages" not in Path(airflow_provider_alta.__file__).parts:
        raise pytest.UsageError(f"airflow_provider_alta was imported from {airflow_provider_alta.__file__}")

#: A distinctive key: tests search logs and errors for it.
SECRET_KEY = "sk-alta-SECRET-7f3a9c2e1d"


def _migrated_database() -> Path:
    """Airflow's metadata database (SQLite), migrated once per test session whatever the number of workers: the
    first process that needs it migrates, the others wait on the lock and copy the file."""
    template = _SESSION / "migrated" / "airflow.db"
    template.parent.mkdir(exist_ok=True)
    with open(_SESSION / "migrated.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.exists():
            env = {**os.environ, "AIRFLOW_HOME": str(template.parent)}
            subprocess.run(
                [sys.executable, "-m", "airflow", "db", "migrate"], check=True, env=env, stdout=subprocess.DEVNULL
            )
    return template


def _one_in_process_execution_api() -> None:
    """``dag.test()`` before Airflow 3.3 builds a new in-process Execution API for every task it runs: about a second
    of FastAPI route generation per task instance, and an event-loop thread left behind each time. Airflow 3.3 builds
    one per process (``functools.lru_cache``); the tests run every release that way. Nothing in the provider depends
    on it: the API a task talks to answers the same."""
    from airflow.sdk.execution_time import supervisor

    if not hasattr(supervisor.in_process_api_server, "cache_info"):
        supervisor.in_process_api_server = functools.lru_cache(maxsize=1)(supervisor.in_process_api_server)
    # Built here, with the database, rather than inside whichever test runs the process' first task: the app, then
    # its versioned routes, which the first request generates.
    import httpx

    with httpx.Client(
        transport=supervisor.in_process_api_server().transport, base_url="http://in-process.invalid./"
    ) as c:
        c.get("health")


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """An initialised metadata database (SQLite) in this process' Airflow home, for tests that run DAGs."""
    if not (_HOME / "airflow.db").exists():
        shutil.copy(_migrated_database(), _HOME / "airflow.db")
    # Every model imported and mapped now, in this thread: a test thread that queries the database first would
    # otherwise configure the mappers, and import the models, while the main thread is importing one (a deadlock).
    from airflow.models import import_all_models
    from sqlalchemy.orm import configure_mappers

    import_all_models()
    configure_mappers()
    _one_in_process_execution_api()
    return _HOME


@pytest.fixture
def alta_conn(alta_emulator, monkeypatch) -> Iterator[str]:
    """``alta_default`` pointing at the emulator, with a secret key and quick retries."""
    alta_emulator.configure(api_key=SECRET_KEY)
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTA_DEFAULT",
        alta_emulator.connection_uri(SECRET_KEY, retry_backoff=0.2, retry_max_wait=20),
    )
    from airflow_provider_alta._core.ratelimit import reset_budgets

    reset_budgets()
    alta_emulator.api_key = SECRET_KEY
    yield "alta_default"
    reset_budgets()


#: The longest a test of ``make test`` may take (README, Development); longer ones are listed at the end of the run.
UNIT_TEST_LIMIT_S = 10.0
_SLOW_UNIT_TESTS: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Each ``make test`` tier test's own run (its call; session fixtures are the session's), as workers report it."""
    if report.when == "call" and not {"cli", "e2e", "distributed"} & set(report.keywords):
        _SLOW_UNIT_TESTS[report.nodeid] = report.duration


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Tests of the unit tier over its time limit, and the production-shape scenarios' figures when they ran."""
    from tests.distributed.figures import FIGURES

    slow = {nodeid: s for nodeid, s in _SLOW_UNIT_TESTS.items() if s > UNIT_TEST_LIMIT_S}
    if slow:
        terminalreporter.section(f"make test tier: tests over {UNIT_TEST_LIMIT_S:.0f} s (see README, Development)")
        for nodeid, seconds in sorted(slow.items(), key=lambda item: -item[1]):
            terminalreporter.write_line(f"{seconds:6.1f} s  {nodeid}")

    if FIGURES:
        terminalreporter.section("production-shape figures")
        for name, value in sorted(FIGURES.items()):
            terminalreporter.write_line(f"{name}: {value}")


def pytest_unconfigure(config: pytest.Config) -> None:
    """The session's homes and databases go with the process that made them (the controller, under xdist)."""
    if _OWNS_SESSION_DIR:
        shutil.rmtree(_SESSION, ignore_errors=True)
