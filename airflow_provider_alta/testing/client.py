"""Drive a running Alta emulator through its ``/_emulator/`` control endpoints.

Standard library only, so it works from any process (tests, e2e drivers,
users' own DAG tests) without pulling in an HTTP client.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from airflow_provider_alta.testing.model import key_id
from airflow_provider_alta.testing.workflows import DEFAULT_API_KEY

#: A key's counters before its first request.
_NOTHING_YET: dict[str, Any] = {
    "invokes": 0,
    "runs": 0,
    "refused_inputs": 0,
    "concurrency_refused": 0,
    "rate_limited": 0,
    "queries": 0,
    "in_flight": 0,
    "peak_in_flight": 0,
    "distinct_inputs": 0,
    "duplicate_runs": 0,
    "duplicate_inputs": [],
}


class EmulatorClient:
    """Configure workflows, inject faults and read counters of one emulator."""

    def __init__(self, url: str, api_key: str = DEFAULT_API_KEY, *, verify: bool = True) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.verify = verify

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        context = None
        if not self.verify:
            import ssl

            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            return json.loads(response.read())

    def reset(self) -> None:
        """Forget runs, counters, faults and workflow changes."""
        self._call("POST", "/_emulator/reset", {})

    def configure(self, api_key: str | None = None, **settings: Any) -> None:
        """Serve a workflow with these :class:`WorkflowConfig` settings for ``api_key``."""
        self._call("PUT", "/_emulator/workflows", {"api_key": api_key or self.api_key, "workflow": settings})

    def inject(self, endpoint: str, kind: str, *, count: int = 1, **options: Any) -> None:
        """Make the next ``count`` requests to ``endpoint`` ("invoke", "query", "any") misbehave (after ``after=N``
        more answered as usual, when given)."""
        self._call("POST", "/_emulator/faults", {"endpoint": endpoint, "kind": kind, "count": count, **options})

    def stats(self, *, logs: bool = True) -> dict[str, Any]:
        """The counters (``keys``: each key's); with ``logs``, the request log, webhook deliveries and sink too."""
        stats: dict[str, Any] = self._call("GET", "/_emulator/stats" + ("" if logs else "?logs=0"))
        return stats

    def key_stats(self, api_key: str | None = None) -> dict[str, Any]:
        """One key's counters: ``runs`` (paid), ``invokes``, ``refused_inputs``, ``concurrency_refused``,
        ``rate_limited``, ``queries``, ``in_flight``, ``peak_in_flight``, ``distinct_inputs``, ``duplicate_runs``,
        ``duplicate_inputs`` (all 0 for a key that sent nothing yet)."""
        keys: dict[str, Any] = self.stats(logs=False)["keys"]
        return dict(keys.get(key_id(api_key or self.api_key)) or _NOTHING_YET)

    def invoke_count(self, api_key: str | None = None) -> int:
        """How many invoke requests for this key reached the emulator's handler (runs started and inputs refused;
        not those the rate or concurrency limit refused)."""
        return int(self.stats(logs=False)["invokes_by_key"].get(key_id(api_key or self.api_key), 0))

    def request_count(self, endpoint: str | None = None) -> int:
        requests = self.stats()["requests"]
        return int(requests[endpoint]) if endpoint else int(sum(requests.values()))

    def request_times(self, endpoint: str) -> list[float]:
        return [e["at"] for e in self.stats()["request_log"] if e["endpoint"] == endpoint]

    def run(self, workflow_run_id: str) -> dict[str, Any]:
        """The emulator's record of a run: its final ``body``, ``ends_at`` and ``queries``."""
        run: dict[str, Any] = self._call("GET", f"/_emulator/runs/{workflow_run_id}")
        return run

    def connection_uri(self, api_key: str | None = None, **extras: Any) -> str:
        """A JSON connection for ``AIRFLOW_CONN_<ID>`` pointing at this emulator."""
        conn: dict[str, Any] = {"conn_type": "alta", "host": self.url, "password": api_key or self.api_key}
        if extras:
            conn["extra"] = extras
        return json.dumps(conn)
