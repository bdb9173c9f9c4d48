"""``alta-emulator`` as a newcomer meets it: the banner, the key, one log line per request, the index."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator

import pytest

from airflow_provider_alta.testing.workflows import DEFAULT_API_KEY
from tests.emulator_cli import COMMAND, Emulator
from tests.testing.wire import start_run


@pytest.fixture
def emulator_process() -> Iterator[Emulator]:
    emulator = Emulator()
    yield emulator
    if emulator.process.poll() is None:
        emulator.stop()


def test_banner_gives_url_key_and_a_connection_line_that_works(emulator_process, monkeypatch):
    first = emulator_process.lines[0]
    assert first.startswith("Alta emulator listening on http://127.0.0.1:")
    assert f"Accepted API key: {DEFAULT_API_KEY}" in emulator_process.lines[1]
    # Paste the printed line as a shell would read it.
    name, value = emulator_process.connection
    assert name == "AIRFLOW_CONN_ALTA_DEFAULT"
    monkeypatch.setenv(name, value)
    from airflow_provider_alta.hooks.alta import AltaHook

    run = AltaHook().invoke_workflow({"topic": "pasted"}, is_async=True)
    url = json.loads(value)["host"]
    with urllib.request.urlopen(f"{url}/_emulator/", timeout=10) as answer:
        index = json.loads(answer.read())
    output = emulator_process.stop()
    assert "POST /v1/workflow/invoke 200" in output
    assert "GET /_emulator/ 200" in output
    assert run.workflow_run_id not in output  # paths and statuses only, never a body
    assert {"/v1/workflow/invoke", "/v1/workflow/query/result", "/_emulator/stats"} <= {
        e["path"] for e in index["endpoints"]
    }


def test_quiet_logs_no_requests(monkeypatch):
    emulator = Emulator("--quiet")
    url = emulator.url
    request = urllib.request.Request(f"{url}/v1/workflow/invoke", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError):  # no key: 401
        urllib.request.urlopen(request, timeout=10)
    assert "/v1/workflow/invoke" not in emulator.stop()


def test_help_names_the_key():
    shown = subprocess.run([*COMMAND, "--help"], capture_output=True, text=True, check=True, env=os.environ).stdout
    assert DEFAULT_API_KEY in " ".join(shown.split())
    assert {"--quiet", "--concurrency-limit", "--seed"} <= set(shown.split())


def test_keys_from_a_config_file_are_never_printed(tmp_path):
    config = tmp_path / "workflows.json"
    config.write_text(json.dumps({"workflows": {"sk-user-own-key-5521": {"duration": 0.1}}}))
    emulator = Emulator("--config", str(config))
    output = emulator.stop()
    assert "sk-user-own-key-5521" not in output
    assert f"the 1 of {config}" in output and "<an API key of workflows.json>" in output


def test_concurrency_limit_flag_caps_every_keys_runs_in_flight():
    emulator = Emulator("--concurrency-limit", "1", "--quiet")
    try:
        assert "At most 1 runs in flight per key (then 429 CONCURRENCY_LIMIT_EXCEEDED)" in emulator.lines
        assert start_run(emulator.url, {"topic": "a"})[0] == 200
        status, _, answer = start_run(emulator.url, {"topic": "b"})
        assert (status, answer["error"]["code"]) == (429, "CONCURRENCY_LIMIT_EXCEEDED")
    finally:
        emulator.stop()


def test_a_limit_below_one_is_refused():
    refused = subprocess.run([*COMMAND, "--concurrency-limit", "0"], capture_output=True, text=True, env=os.environ)
    assert refused.returncode == 2 and "--concurrency-limit must be 1 or more" in refused.stderr
