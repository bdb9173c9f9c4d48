"""The two requests a batch sends, one attempt each, through an async hook's shared session.

The batch's plan decides every retry itself (a concurrency 429 lowers its concurrency, an invoke is sent again
only when it provably started nothing), so nothing here retries: a retry loop inside the request would hide the
429s the plan learns from. The hook is passed in (this layer sits below the hooks) and asked for single attempts
(``retry=False``): the same transport, error mapping, key budget and session as every other request.
"""

from __future__ import annotations

from typing import Any, Protocol

from airflow_provider_alta.models import WorkflowRun


class BatchClient(Protocol):
    """What the driver needs: one invoke, one query, each a single attempt raising the typed errors."""

    invokes: int
    queries: int

    async def invoke(self, body: dict[str, Any]) -> WorkflowRun: ...

    async def query(self, workflow_run_id: str) -> WorkflowRun: ...


class HookClient:
    """A :class:`BatchClient` over an ``AltaAsyncHook`` (its connection read, its session open)."""

    def __init__(self, hook: Any) -> None:
        self.hook = hook
        self.invokes = 0
        self.queries = 0

    async def invoke(self, body: dict[str, Any]) -> WorkflowRun:
        self.invokes += 1
        run: WorkflowRun = await self.hook.invoke_workflow(
            body["input"],
            user_id=body.get("userId"),
            is_async=bool(body.get("isAsync", False)),
            webhooks=body.get("webhook"),
            retry=False,
        )
        return run

    async def query(self, workflow_run_id: str) -> WorkflowRun:
        self.queries += 1
        run: WorkflowRun = await self.hook.get_run(workflow_run_id, retry=False)
        return run
