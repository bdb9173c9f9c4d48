"""Test settings: a throwaway AIRFLOW_HOME set before Airflow is imported."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# setdefault: one home per test process, however often this module is imported.
_HOME = Path(os.environ.setdefault("ALTA_TESTS_AIRFLOW_HOME", tempfile.mkdtemp(prefix="alta-tests-airflow-")))
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


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """An initialised metadata database (SQLite) for tests that run DAGs."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
    )
    return _HOME


@pytest.fixture
def alta_conn(alta_emulator, monkeypatch) -> Iterator[str]:
    """``alta_default`` pointing at the emulator, with a secret key and quick retries."""
    alta_emulator.configure(api_key=SECRET_KEY)
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTA_DEFAULT",
        alta_emulator.connection_uri(SECRET_KEY, retry_backoff=0.2, retry_max_wait=20),
    )
    from airflow_provider_alta.ratelimit import reset_budgets

    reset_budgets()
    alta_emulator.api_key = SECRET_KEY
    yield "alta_default"
    reset_budgets()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The production-shape scenarios' figures, when they ran (tests/distributed)."""
    from tests.distributed.figures import FIGURES

    if FIGURES:
        terminalreporter.section("production-shape figures")
        for name, value in sorted(FIGURES.items()):
            terminalreporter.write_line(f"{name}: {value}")
