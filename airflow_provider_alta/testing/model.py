"""The emulator's model of Alta: runs, their status over time, faults to inject (no HTTP here).

:mod:`airflow_provider_alta.testing.api` serves this model over HTTP.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_alta.testing.directives import without_directive
from airflow_provider_alta.testing.workflows import WorkflowConfig

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

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


@dataclass(slots=True)
class Run:
    """One run as the emulator keeps it for its lifetime: a few fields and the input it was sent, nothing per run
    that grows (its workflow is shared with the key's other runs; its output is rendered when asked for)."""

    run_id: str
    api_key: str = field(repr=False)
    workflow: WorkflowConfig
    input: dict[str, Any]
    is_async: bool
    created_at: float
    failed: bool
    #: Workflow seconds the run lasts (its wall-clock length is this times the workflow's ``time_scale``).
    duration: float
    webhooks: list[dict[str, Any]] = field(default_factory=list, repr=False)
    queries: int = 0
    last_query_at: float | None = None
    #: Set by the input's ``fail`` directive when it gives its own message; else the workflow's.
    failure_message: str | None = None

    @property
    def ends_at(self) -> float:
        return self.created_at + self.workflow.wall_seconds(self.duration)

    def status(self, now: float) -> str:
        if now >= self.ends_at:
            return "FAILED" if self.failed else "SUCCEED"
        if now < self.created_at + self.workflow.wall_seconds(min(0.2, self.duration / 10)):
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
                output=wf.render_output(without_directive(self.input)),
                workflowExecutionTime=int(self.duration * 1000),
                totalCost=wf.cost,
                totalTokens=wf.tokens,
                endTime=int(self.ends_at * 1000),
            )
        elif status == "FAILED":
            body.update(
                output=None,
                errorMessage=self.failure_message or wf.failure_message,
                workflowExecutionTime=int(self.duration * 1000),
                totalCost=round(wf.cost / 2, 4),
                totalTokens=wf.tokens // 2,
                endTime=int(self.ends_at * 1000),
            )
        return body


def check_input(workflow: WorkflowConfig, run_input: dict[str, Any]) -> str | None:
    """Why ``run_input`` does not match the workflow's Start node, else ``None``."""
    if not workflow.input_schema:
        return None
    errors = list(_validator(workflow.input_schema).iter_errors(run_input))
    if not errors:
        return None
    where = "/".join(str(p) for p in errors[0].path) or "input"
    return f"Input does not match the Start node: {where}: {errors[0].message}"


#: Built validators by the identity of their schema (held here, so the identity stays its own): building one costs
#: more than checking an input with it, and a key's workflow keeps its schema until it is configured again.
_VALIDATORS: dict[int, tuple[dict[str, Any], Validator]] = {}


def _validator(schema: dict[str, Any]) -> Validator:
    cached = _VALIDATORS.get(id(schema))
    if cached is None:
        import jsonschema

        if len(_VALIDATORS) >= 64:
            _VALIDATORS.clear()
        cached = _VALIDATORS[id(schema)] = (schema, jsonschema.Draft202012Validator(schema))
    return cached[1]
