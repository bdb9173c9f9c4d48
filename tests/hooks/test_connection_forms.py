"""Every way a user writes an Alta connection reaches the emulator, or fails naming the URL it tried."""

from __future__ import annotations

import json
import socket

import pytest

from airflow_provider_alta._core.connection import normalize_base_url
from airflow_provider_alta._core.ratelimit import reset_budgets
from airflow_provider_alta.exceptions import AltaTransportError, AltaValidationError
from airflow_provider_alta.hooks.alta import AltaAsyncHook, AltaHook
from airflow_provider_alta.models import RunStatus
from tests.conftest import SECRET_KEY


@pytest.fixture
def emulator_port(alta_emulator):
    alta_emulator.configure(api_key=SECRET_KEY, duration=0.05)
    reset_budgets()
    return int(alta_emulator.url.rsplit(":", 1)[1])


def connection(monkeypatch, value: str | dict) -> AltaHook:
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", value if isinstance(value, str) else json.dumps(value))
    return AltaHook()


def airflow_cli_uri(**fields) -> str:
    """The URI Airflow itself writes for a connection (what ``airflow connections add --conn-host`` stores)."""
    from airflow.models.connection import Connection

    return Connection(conn_id="alta_default", conn_type="alta", password=SECRET_KEY, **fields).get_uri()


@pytest.mark.parametrize(
    "form",
    [
        pytest.param(lambda port: f"alta://:{SECRET_KEY}@127.0.0.1:{port}", id="uri-with-port"),
        pytest.param(
            lambda port: {"conn_type": "alta", "host": f"127.0.0.1:{port}", "password": SECRET_KEY}, id="no-scheme"
        ),
        pytest.param(lambda port: airflow_cli_uri(host=f"http://127.0.0.1:{port}"), id="cli-conn-host-with-scheme"),
        pytest.param(
            lambda port: {
                "conn_type": "alta",
                "host": "127.0.0.1",
                "port": port,
                "schema": "http",
                "password": SECRET_KEY,
            },
            id="host-port-schema-fields",
        ),
        pytest.param(
            lambda port: {"conn_type": "alta", "host": "localhost", "port": port, "password": SECRET_KEY},
            id="localhost",
        ),
    ],
)
def test_connection_forms_reach_the_emulator(emulator_port, monkeypatch, alta_emulator, form):
    hook = connection(monkeypatch, form(emulator_port))
    assert hook.config.base_url.endswith(f":{emulator_port}")
    assert hook.invoke_workflow({"topic": "forms"}).status is RunStatus.SUCCEED
    assert alta_emulator.invoke_count(SECRET_KEY) == 1


@pytest.mark.parametrize(
    ("host", "port", "schema", "url"),
    [
        (None, None, None, "https://altatech.ai"),
        ("altatech.ai", None, None, "https://altatech.ai"),
        ("alta.example.com", 8443, None, "https://alta.example.com:8443"),
        ("alta.example.com:8080", None, "http", "http://alta.example.com:8080"),
        ("https://alta.example.com/api/", None, None, "https://alta.example.com/api"),
        ("127.0.0.1:8765", None, None, "http://127.0.0.1:8765"),
        ("http://127.0.0.1", 8765, None, "http://127.0.0.1:8765"),
    ],
)
def test_base_url_keeps_every_part(host, port, schema, url):
    assert normalize_base_url(host, port=port, schema=schema) == url


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"host": "http://h.io:1", "port": 2}, "port 1 but its port field says 2"),
        ({"host": "http://h.io", "schema": "https"}, "keep one of them"),
        ({"host": "h.io", "schema": "ftp"}, "schema field must be empty, 'http' or 'https'"),
        ({"host": "https://user:pw@h.io"}, "put the API key in the password field"),
        ({"host": "ftp://h.io"}, "must be an http(s) URL"),
    ],
)
def test_contradictory_connections_are_refused(fields, message):
    with pytest.raises(AltaValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        normalize_base_url(fields.pop("host"), **fields)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_nothing_listening_names_the_url_and_the_fix(monkeypatch):
    port = free_port()
    hook = connection(monkeypatch, f"alta://:{SECRET_KEY}@127.0.0.1:{port}?max_retries=0")
    with pytest.raises(AltaTransportError) as err:
        hook.invoke_workflow({"topic": "down"})
    text = str(err.value)
    assert f"http://127.0.0.1:{port}/v1/workflow/invoke" in text
    assert "connection refused" in text and "Base URL" in text and "TLS" not in text
    assert err.value.sent is False and SECRET_KEY not in text


async def test_async_hook_names_the_url_too(monkeypatch):
    port = free_port()
    connection(monkeypatch, f"alta://:{SECRET_KEY}@127.0.0.1:{port}?max_retries=0")
    async with AltaAsyncHook() as hook:
        with pytest.raises(AltaTransportError) as err:
            await hook.get_run("some-run")
    assert f"http://127.0.0.1:{port}/v1/workflow/query/result" in str(err.value)
    assert "connection refused" in str(err.value)


def test_https_to_a_plain_http_server_says_so(emulator_port, monkeypatch):
    hook = connection(
        monkeypatch,
        {
            "conn_type": "alta",
            "host": f"https://127.0.0.1:{emulator_port}",
            "password": SECRET_KEY,
            "extra": {"max_retries": 0},
        },
    )
    with pytest.raises(AltaTransportError) as err:
        hook.invoke_workflow({"topic": "tls"})
    text = str(err.value)
    assert f"https://127.0.0.1:{emulator_port}/v1/workflow/invoke" in text
    assert "does not speak TLS" in text and "http://" in text and "'verify'" not in text
