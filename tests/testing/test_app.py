"""The emulator's application: its index of endpoints and its one log line per request."""

from __future__ import annotations

import json
import urllib.request

import aiohttp

from airflow_provider_alta.testing.app import AltaEmulator
from airflow_provider_alta.testing.workflows import DEFAULT_API_KEY


def test_the_index_lists_every_endpoint(alta_emulator):
    with urllib.request.urlopen(f"{alta_emulator.url}/_emulator/", timeout=10) as answer:
        index = json.loads(answer.read())
    paths = {(e["method"], e["path"]) for e in index["endpoints"]}
    assert {
        ("POST", "/v1/workflow/invoke"),
        ("POST", "/v1/workflow/query/result"),
        ("GET", "/_emulator/"),
        ("GET", "/_emulator/stats"),
        ("POST", "/_emulator/reset"),
        ("POST", "/_emulator/faults"),
        ("PUT", "/_emulator/workflows"),
        ("GET", "/_emulator/runs/{run_id}"),
        ("*", "/_emulator/sink"),
    } == paths
    assert all(e["what"] for e in index["endpoints"])


async def test_one_log_line_per_request_without_key_or_body():
    lines: list[str] = []
    emulator = AltaEmulator(log=lines.append)
    serving = await emulator.start()
    url = f"http://127.0.0.1:{serving.port}"
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"}) as session:
            body = {"input": {"topic": "secret-topic"}, "isAsync": True}
            async with session.post(f"{url}/v1/workflow/invoke", json=body) as answer:
                assert answer.status == 200
            async with session.get(f"{url}/_emulator/stats?logs=0") as answer:
                assert answer.status == 200
    finally:
        await serving.stop()
    assert [line.rsplit(" ", 2)[0] for line in lines] == ["POST /v1/workflow/invoke 200", "GET /_emulator/stats 200"]
    assert not any("secret-topic" in line or DEFAULT_API_KEY in line for line in lines)
    assert emulator.stats()["connections"] == 1
