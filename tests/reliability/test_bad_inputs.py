"""Bad arguments to the sensor, trigger, hook waits and connection: a clear error, and not one request.

The invoke arguments (hook) and operator arguments have their own tables in
tests/hooks and tests/operators; these complete the set.
"""

from __future__ import annotations

import json

import pytest

from airflow_provider_alta.exceptions import AltaValidationError
from airflow_provider_alta.hooks.alta import AltaHook
from airflow_provider_alta.sensors.alta import AltaWorkflowRunSensor
from airflow_provider_alta.triggers.alta import AltaWorkflowRunTrigger
from tests.conftest import SECRET_KEY

SENSOR = [
    ({"workflow_run_id": ""}, "workflow_run_id"),
    ({"workflow_run_id": "   "}, "workflow_run_id"),
    ({"workflow_run_id": "r", "output_schema": {"type": 5}}, "not a valid JSON Schema"),
    ({"workflow_run_id": "r", "poll_min_interval": -1}, "poll_min_interval"),
    ({"workflow_run_id": "r", "poll_max_interval": 0}, "poll_max_interval"),
    ({"workflow_run_id": "r", "poll_ratio": 0}, "poll_ratio"),
]


@pytest.mark.parametrize(("kwargs", "message"), SENSOR)
def test_sensor_arguments(alta_emulator, kwargs, message):
    with pytest.raises(AltaValidationError, match=message):
        AltaWorkflowRunSensor(task_id="s", **kwargs)
    assert alta_emulator.request_count() == 0


@pytest.mark.parametrize(
    ("polling", "message"),
    [({"min_interval": 0}, "poll_min_interval"), ({"jitter": 2}, "poll_jitter"), ({"bogus": 1}, "bogus")],
)
def test_trigger_polling_settings(polling, message):
    with pytest.raises((AltaValidationError, TypeError), match=message):
        AltaWorkflowRunTrigger("r", polling=polling)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mailbox_interval": 0}, "mailbox_interval"),
        ({"mailbox": {"dag_id": "d"}}, "missing"),
        ({"polling": {"expected_duration": -1}}, "expected_duration"),
    ],
)
def test_trigger_mailbox_and_expected_duration(kwargs, message):
    with pytest.raises((AltaValidationError, TypeError), match=message):
        AltaWorkflowRunTrigger("r", **kwargs)


@pytest.mark.parametrize("timeout", [-1, 0, float("nan"), "soon"])
def test_wait_timeout(alta_conn, alta_emulator, timeout):
    with pytest.raises(AltaValidationError, match="timeout"):
        AltaHook().wait_for_run("r", timeout=timeout)
    assert alta_emulator.request_count() == 0


CONNECTION_EXTRAS = [
    ({"tiemout": 5}, "unknown extras"),
    ({"timeout": -5}, "timeout"),
    ({"connect_timeout": 0}, "connect_timeout"),
    ({"verify": "maybe-a-path-but-not-a-bool", "proxies": "http://proxy"}, "proxies"),
    ({"verify": 3}, "verify"),
    ({"max_retries": -1}, "max_retries"),
    ({"max_retries": 1.5}, "max_retries"),
    ({"retry_backoff": 0}, "retry_backoff"),
    ({"webhook_secret": "short"}, "webhook_secret"),
    ({"webhook_secret": 12345678901234567}, "webhook_secret"),
    ({"timeout": "soon"}, "'timeout' must be a number"),
    ({"proxies": "[1]"}, "proxies"),
]


@pytest.mark.parametrize(("extra", "message"), CONNECTION_EXTRAS)
def test_connection_extras(alta_emulator, monkeypatch, extra, message):
    conn = {"conn_type": "alta", "host": alta_emulator.url, "password": SECRET_KEY, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", json.dumps(conn))
    with pytest.raises(AltaValidationError, match=message) as err:
        AltaHook().get_run("r")
    assert SECRET_KEY not in str(err.value)
    assert alta_emulator.request_count() == 0


def test_extras_as_the_connection_form_saves_them(alta_conn, alta_emulator, monkeypatch):
    """Airflow 3.0/3.1 forms save numbers as text, and every form saves an untouched field as null or ""."""
    extra = {
        "timeout": "30",
        "connect_timeout": "2.5",
        "retry_backoff": "0.2",
        "max_retries": 2,
        "verify": "",
        "proxies": None,
        "webhook_secret": "",
        "sync_invoke_timeout": None,
    }
    conn = {"conn_type": "alta", "host": alta_emulator.url, "password": SECRET_KEY, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", json.dumps(conn))
    hook = AltaHook()
    run = hook.invoke_workflow({"topic": "form"}, is_async=True)
    assert hook.get_run(run.workflow_run_id).workflow_run_id == run.workflow_run_id
    config = hook.config
    assert (config.read_timeout, config.connect_timeout, config.sync_invoke_timeout) == (30.0, 2.5, 900.0)
    assert config.verify is True and config.proxies is None and config.webhook_secret is None


def test_base_url_scheme(alta_emulator, monkeypatch):
    conn = {"conn_type": "alta", "host": "ftp://altatech.ai", "password": SECRET_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", json.dumps(conn))
    with pytest.raises(AltaValidationError, match="http"):
        AltaHook().get_run("r")
