"""The run model: a typed, immutable view of an Alta workflow run."""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_alta.exceptions import AltaInvalidResponseError


class RunStatus(str, enum.Enum):
    """The documented states of a workflow run."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEED = "SUCCEED"
    FAILED = "FAILED"

    @property
    def is_terminal(self) -> bool:
        return self in (RunStatus.SUCCEED, RunStatus.FAILED)


#: Fields a FAILED run might use to explain itself. The API does not document
#: any, so the first one present (in this order) is surfaced.
_ERROR_DETAIL_FIELDS = ("error", "errorMessage", "errorMsg", "message", "failReason", "reason")


def _opt(body: dict[str, Any], key: str, kind: type | tuple[type, ...], endpoint: str | None) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kind):
        raise AltaInvalidResponseError(
            f"Alta answered with a {type(value).__name__} for {key!r}, expected {_kind_name(kind)}",
            endpoint=endpoint,
            workflow_run_id=body.get("workflowRunId") if isinstance(body.get("workflowRunId"), str) else None,
        )
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


@dataclass(frozen=True)
class WorkflowRun:
    """One workflow run as the API last described it.

    Unknown fields are kept in ``raw``; optional fields the API left out are
    ``None``. Only ``workflowRunId`` and ``status`` are required. The repr
    leaves ``output`` and ``raw`` out: an output can be tens of megabytes.
    """

    workflow_run_id: str
    status: RunStatus
    workflow_id: str | None = None
    workflow_name: str | None = None
    workflow_version: str | None = None
    input: dict[str, Any] | None = None
    output: Any = field(default=None, repr=False)
    execution_time_ms: float | None = None
    total_cost: float | None = None
    total_tokens: int | float | None = None
    start_time_ms: float | None = None
    end_time_ms: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_response(cls, body: Any, *, endpoint: str | None = None, copy_body: bool = True) -> WorkflowRun:
        """Parse an invoke or query answer; raise ``AltaInvalidResponseError`` on a malformed one.

        ``copy_body=False`` keeps ``body`` itself as ``raw``, for a body nobody else holds (just decoded).
        """
        if not isinstance(body, dict):
            raise AltaInvalidResponseError(
                f"Alta answered with a JSON {type(body).__name__}, expected an object describing a run",
                endpoint=endpoint,
            )
        run_id = body.get("workflowRunId")
        if not isinstance(run_id, str) or not run_id:
            raise AltaInvalidResponseError("Alta's answer has no 'workflowRunId'", endpoint=endpoint)
        raw_status = body.get("status")
        try:
            status = RunStatus(raw_status)
        except ValueError:
            raise AltaInvalidResponseError(
                f"Alta answered with an unknown run status {raw_status!r}; "
                f"expected one of {', '.join(s.value for s in RunStatus)}",
                endpoint=endpoint,
                workflow_run_id=run_id,
            ) from None
        number = (int, float)
        return cls(
            workflow_run_id=run_id,
            status=status,
            workflow_id=_opt(body, "workflowId", str, endpoint),
            workflow_name=_opt(body, "workflowName", str, endpoint),
            workflow_version=_opt(body, "workflowVersion", str, endpoint),
            input=_opt(body, "input", dict, endpoint),
            output=body.get("output"),
            execution_time_ms=_opt(body, "workflowExecutionTime", number, endpoint),
            total_cost=_opt(body, "totalCost", number, endpoint),
            total_tokens=_opt(body, "totalTokens", number, endpoint),
            start_time_ms=_opt(body, "startTime", number, endpoint),
            end_time_ms=_opt(body, "endTime", number, endpoint),
            raw=copy.deepcopy(body) if copy_body else body,
        )

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def error_detail(self) -> str | None:
        """Whatever a FAILED run says about why (the API documents no field for it)."""
        for key in _ERROR_DETAIL_FIELDS:
            value = self.raw.get(key)
            if value:
                return value if isinstance(value, str) else repr(value)
        return None

    def to_dict(self, *, without_output: bool = False) -> dict[str, Any]:
        """The run as the API described it (the raw body, JSON-safe), optionally without its output.

        A new top-level dict whose values are shared with this run, not copied: an output can be tens of
        megabytes, and the one caller (a trigger's event) only serialises it. Treat the values as read-only.
        """
        return {key: value for key, value in self.raw.items() if not (without_output and key == "output")}

    def describe(self) -> str:
        """A short human label: ``todayNews 1.0.1 run r-123``."""
        name = self.workflow_name or "workflow"
        version = f" {self.workflow_version}" if self.workflow_version else ""
        return f"{name}{version} run {self.workflow_run_id}"
