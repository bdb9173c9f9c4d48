"""Webhook delivery: when an async run that named webhooks ends, each is called once, as Alta documents.

``POST`` sends the query-result JSON; ``GET`` sends ``workflowRunId`` and ``status`` as query parameters; the
caller's headers are sent as given (a workflow's ``webhook_copies`` and ``webhook_delay`` lose, repeat or delay
them). Every delivery is recorded with the header names only (their values may be secrets).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import ClientSession, ClientTimeout

from airflow_provider_alta.testing.model import Run
from airflow_provider_alta.testing.state import EmulatorState


class WebhookSender:
    """One task per run with webhooks, ended once its deliveries are made; one HTTP session for them all."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self._client: ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def schedule(self, run: Run) -> None:
        """Deliver ``run``'s webhooks when it ends."""
        task = asyncio.get_running_loop().create_task(self._deliver_later(run))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel the deliveries still waiting and close the session."""
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.close()

    async def _deliver_later(self, run: Run) -> None:
        delay = run.workflow.wall_seconds(run.workflow.webhook_delay)
        await asyncio.sleep(max(0.0, run.ends_at + delay - time.time()))
        if self._client is None:
            self._client = ClientSession(timeout=ClientTimeout(total=10))
        final = run.body(max(time.time(), run.ends_at))
        for hook in [hook for hook in run.webhooks for _ in range(run.workflow.webhook_copies)]:
            record = await self._deliver(self._client, run, hook, final)
            self._state.deliveries.append(record)  # after the call: a reset meanwhile starts a new log

    @staticmethod
    async def _deliver(client: ClientSession, run: Run, hook: dict[str, Any], final: dict[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = {
            "workflowRunId": run.run_id,
            "method": hook.get("method"),
            "url": hook.get("url"),
            "header_names": sorted((hook.get("headers") or {}).keys()),
            "at": time.time(),
        }
        try:
            method = str(hook.get("method", "POST")).upper()
            kwargs: dict[str, Any] = {"headers": hook.get("headers") or {}}
            if method == "GET":
                kwargs["params"] = {"workflowRunId": run.run_id, "status": final["status"]}
            else:
                kwargs["json"] = final
            async with client.request(method, hook["url"], **kwargs) as response:
                record["status"] = response.status
        except Exception as exc:  # a receiver's failure is recorded, not raised
            record["error"] = type(exc).__name__
        record["seconds"] = round(time.time() - record["at"], 4)  # how long the receiver took to answer
        return record
