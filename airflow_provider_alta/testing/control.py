"""The control endpoints under ``/_emulator/`` (not counted, no key needed): tests configure workflows, inject
faults, read counters and runs, and receive webhooks through them (:class:`~.client.EmulatorClient` calls them).
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from airflow_provider_alta.testing.model import Fault
from airflow_provider_alta.testing.state import EmulatorState
from airflow_provider_alta.testing.workflows import WorkflowConfig


class ControlApi:
    """The handlers of ``/_emulator/...``, over the emulator's state."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state

    def routes(self) -> list[tuple[str, str, Any, str]]:
        """(method, path, handler, what it is for) of each control endpoint."""
        return [
            ("GET", "/_emulator/stats", self.stats, "counters (per key too) and logs (?logs=0: no logs)"),
            ("POST", "/_emulator/reset", self.reset, "forget runs, counters, faults and workflow changes"),
            ("POST", "/_emulator/faults", self.add_fault, "misbehave on the next requests (see Fault)"),
            ("PUT", "/_emulator/workflows", self.put_workflow, "serve a workflow for a key (see WorkflowConfig)"),
            ("GET", "/_emulator/runs/{run_id}", self.get_run, "the emulator's record of one run"),
            ("*", "/_emulator/sink", self.sink, "a webhook receiver that records what arrived"),
        ]

    async def stats(self, request: web.Request) -> web.Response:
        logs = request.query.get("logs", "1").lower() not in ("0", "false", "no")
        return web.json_response(self._state.stats(logs=logs))

    async def reset(self, _request: web.Request) -> web.Response:
        self._state.reset()
        return web.json_response({"ok": True})

    async def add_fault(self, request: web.Request) -> web.Response:
        try:
            self._state.faults.append(Fault.from_dict(await request.json()))
        except (TypeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def put_workflow(self, request: web.Request) -> web.Response:
        data = await request.json()
        try:
            self._state.workflows[data["api_key"]] = WorkflowConfig.from_dict(data.get("workflow") or {})
        except (KeyError, TypeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def get_run(self, request: web.Request) -> web.Response:
        run = self._state.runs.get(request.match_info["run_id"])
        if run is None:
            return web.json_response({"error": "unknown run"}, status=404)
        now = time.time()
        return web.json_response(
            {
                "body": run.body(max(now, run.ends_at)),
                "ends_at": run.ends_at,
                "queries": run.queries,
                "last_query_at": run.last_query_at,
                # Where the run reports when it ends (URLs only: headers may hold secrets).
                "webhook_urls": [hook.get("url") for hook in run.webhooks],
                "status_now": run.status(now),
            }
        )

    async def sink(self, request: web.Request) -> web.Response:
        """A webhook receiver for tests: records what arrived (header names only)."""
        self._state.sunk.append(
            {
                "method": request.method,
                "query": dict(request.query),
                "header_names": sorted(request.headers),
                "body": await request.text(),
                "at": time.time(),
            }
        )
        return web.Response(status=204)
