"""Both hooks against the emulator served over HTTPS with a self-signed certificate."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator

import pytest

from airflow_provider_alta._core.ratelimit import reset_budgets
from airflow_provider_alta.exceptions import AltaTransportError
from airflow_provider_alta.hooks.alta import AltaAsyncHook, AltaHook
from airflow_provider_alta.models import RunStatus
from airflow_provider_alta.testing.emulator import EmulatorThread
from airflow_provider_alta.testing.tls import self_signed
from airflow_provider_alta.testing.workflows import DEFAULT_API_KEY, WorkflowConfig


@pytest.fixture(scope="module")
def https_emulator(tmp_path_factory) -> Iterator[tuple[EmulatorThread, str]]:
    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with EmulatorThread({DEFAULT_API_KEY: WorkflowConfig(duration=0.0)}, ssl_context=context) as server:
        yield server, str(cert)


def use(monkeypatch, url: str, **extra) -> None:
    reset_budgets()
    conn = {"conn_type": "alta", "host": url, "password": DEFAULT_API_KEY, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", json.dumps(conn))


def test_verify_false_wins_over_requests_ca_bundle(https_emulator, monkeypatch):
    """requests lets REQUESTS_CA_BUNDLE override a session's verify=False; the hook must not."""
    server, cert = https_emulator
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ssl.get_default_verify_paths().openssl_cafile or cert)
    use(monkeypatch, server.url, verify=False)
    assert AltaHook().invoke_workflow({"topic": "tls"}).status is RunStatus.SUCCEED


def test_ca_bundle_path_verifies(https_emulator, monkeypatch):
    server, cert = https_emulator
    use(monkeypatch, server.url, verify=cert)
    assert AltaHook().invoke_workflow({"topic": "tls"}).status is RunStatus.SUCCEED


def test_failed_handshake_is_typed_and_not_sent(https_emulator, monkeypatch):
    server, _ = https_emulator
    use(monkeypatch, server.url, max_retries=0)
    before = server.emulator.stats()["requests"]["invoke"]
    with pytest.raises(AltaTransportError) as err:
        AltaHook().invoke_workflow({"topic": "tls"})
    assert err.value.sent is False
    assert "TLS handshake" in str(err.value)
    assert server.emulator.stats()["requests"]["invoke"] == before


@pytest.mark.parametrize("verify", ["cert", False])
async def test_async_hook_over_tls(https_emulator, monkeypatch, verify):
    server, cert = https_emulator
    use(monkeypatch, server.url, verify=cert if verify == "cert" else False)
    run_id = AltaHook().invoke_workflow({"topic": "tls"}, is_async=True).workflow_run_id
    async with AltaAsyncHook() as hook:
        run = await hook.get_run(run_id)
    assert run.workflow_run_id == run_id
