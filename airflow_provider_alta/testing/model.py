"""The emulator's model of Alta: runs, their status over time, faults to inject (no HTTP here).

:mod:`airflow_provider_alta.testing.emulator` serves this model over HTTP.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_alta.testing.workflows import WorkflowConfig

INVOKE = "invoke"
QUERY = "query"
MAX_BODY = 1024 * 1024
#: The deepest request body accepted (Alta documents no limit; a deeper one answers 400).
MAX_REQUEST_DEPTH = 128
FAULT_KINDS = ("status", "html", "malformed", "body", "delay", "delay_after", "drop", "drop_after")


def key_id(api_key: str) -> str:
    """How the emulator's counters name a key (never the key itself)."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:12]


@dataclass
class Fault:
    endpoint: str  # "invoke", "query" or "any"
    kind: str
    count: int = 1
    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    body: Any = None
    text: str | None = None  # kind "body": served as is instead of ``body`` (e.g. JSON too deep to build)
    after: int = 0  # matching requests answered normally before the fault starts

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        fault = cls(**data)
        if fault.endpoint not in (INVOKE, QUERY, "any"):
            raise ValueError("fault endpoint must be 'invoke', 'query' or 'any'")
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}")
        return fault


@dataclass
class Run:
    run_id: str
    api_key: str = field(repr=False)
    workflow: WorkflowConfig
    input: dict[str, Any]
    is_async: bool
    created_at: float
    failed: bool
    webhooks: list[dict[str, Any]] = field(default_factory=list, repr=False)
    queries: int = 0
    last_query_at: float | None = None

    @property
    def ends_at(self) -> float:
        return self.created_at + self.workflow.wall_seconds(self.workflow.duration)

    def status(self, now: float) -> str:
        if now >= self.ends_at:
            return "FAILED" if self.failed else "SUCCEED"
        if now < self.created_at + self.workflow.wall_seconds(min(0.2, self.workflow.duration / 10)):
            return "PENDING"
        return "RUNNING"

    def acknowledgement(self) -> dict[str, Any]:
        """The documented answer to an async invoke."""
        wf = self.workflow
        return {
            "workflowId": wf.workflow_id,
            "workflowName": wf.name,
            "workflowVersion": wf.version,
            "workflowRunId": self.run_id,
            "status": "PENDING",
        }

    def body(self, now: float) -> dict[str, Any]:
        wf = self.workflow
        status = self.status(now)
        body = self.acknowledgement()
        body.update(status=status, input=self.input)
        body["startTime"] = int(self.created_at * 1000)
        if status == "SUCCEED":
            body.update(
                output=wf.render_output(self.input),
                workflowExecutionTime=int(wf.duration * 1000),
                totalCost=wf.cost,
                totalTokens=wf.tokens,
                endTime=int(self.ends_at * 1000),
            )
        elif status == "FAILED":
            body.update(
                output=None,
                errorMessage=wf.failure_message,
                workflowExecutionTime=int(wf.duration * 1000),
                totalCost=round(wf.cost / 2, 4),
                totalTokens=wf.tokens // 2,
                endTime=int(self.ends_at * 1000),
            )
        return body


def check_input(workflow: WorkflowConfig, run_input: dict[str, Any]) -> str | None:
    if not workflow.input_schema:
        return None
    import jsonschema

    errors = list(jsonschema.Draft202012Validator(workflow.input_schema).iter_errors(run_input))
    if not errors:
        return None
    where = "/".join(str(p) for p in errors[0].path) or "input"
    return f"Input does not match the Start node: {where}: {errors[0].message}"
