"""A newcomer's first hour, scripted: start the emulator, paste its connection line, make the usual mistakes.

Each mistake must end in a message that names the fix and never shows the key. Writing the README's DAGs
and running them the way the README says (test home, ``airflow db migrate``, the fixture) is
tests/test_readme.py; the demo's failure report is checked in tests/operators/test_retry_classes.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from airflow_provider_alta.exceptions import AltaError
from airflow_provider_alta.failures import for_airflow
from airflow_provider_alta.hooks.alta import AltaHook
from airflow_provider_alta.models import RunStatus
from airflow_provider_alta.operators.alta import AltaRunWorkflowOperator
from airflow_provider_alta.ratelimit import reset_budgets
from airflow_provider_alta.testing.workflows import DEFAULT_API_KEY
from tests.emulator_cli import Emulator

WRONG_KEY = "sk-newcomer-guessed-key-93e1"


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
