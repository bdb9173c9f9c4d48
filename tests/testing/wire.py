"""Talk to an emulator as a client of Alta does: plain HTTP, the key in ``Authorization``."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from airflow_provider_alta.testing.workflows import DEFAULT_API_KEY

INVOKE = "/v1/workflow/invoke"
QUERY = "/v1/workflow/query/result"


def post(url: str, path: str, body: Any, key: str | None = DEFAULT_API_KEY) -> tuple[int, dict[str, str], Any]:
    """(status, headers, JSON body) of one POST, error answers included."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


def start_run(url: str, run_input: dict[str, Any], key: str = DEFAULT_API_KEY) -> tuple[int, dict[str, str], Any]:
    """An async invoke of ``run_input``."""
    return post(url, INVOKE, {"input": run_input, "isAsync": True}, key)


def query(url: str, run_id: str, key: str = DEFAULT_API_KEY) -> dict[str, Any]:
    """The run's query answer (its body, whatever the status)."""
    answer: dict[str, Any] = post(url, QUERY, {"workflowRunId": run_id}, key)[2]
    return answer


def wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    """``condition()``'s first true value, polled until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            assert value, "the condition did not hold in time"
            return value
        time.sleep(0.02)
