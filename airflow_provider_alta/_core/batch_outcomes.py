"""What a failed request means for one item of a batch (pure): send it again, wait, or end the item.

An invoke is sent again only when it provably started nothing (:mod:`airflow_provider_alta._core.request_retry`);
one whose outcome is unknown may have started a paid run, so its item ends ``UNKNOWN`` instead (unless the
user allows a second run). A 429 is either the key's request quota or its concurrency limit; only the error
code tells them apart, and only the second one lowers the batch's concurrency.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from airflow_provider_alta._core.batch_progress import ItemStatus
from airflow_provider_alta._core.protocol import invoke_request, is_concurrency_limit
from airflow_provider_alta._core.request_retry import is_transient, may_retry, outcome_unknown
from airflow_provider_alta.exceptions import (
    AltaAuthError,
    AltaError,
    AltaInvokeOutcomeUnknownError,
    AltaNotFoundError,
)
from airflow_provider_alta.models import WorkflowRun

_INVOKE = invoke_request({})


class StopReason(str, enum.Enum):
    """Why a batch stopped starting runs before its last item (its runs in flight still finish)."""

    MAX_COST = "max_cost"
    MAX_TOKENS = "max_tokens"
    MAX_FAILED_ITEMS = "max_failed_items"


@dataclass(frozen=True)
class ItemEnd:
    """An item is done: its result line is due."""

    index: int
    status: ItemStatus
    run: WorkflowRun | None = None
    error: str | None = None
    workflow_run_id: str | None = None


class InvokeFailure(enum.Enum):
    """What a failed invoke means for its item."""

    #: The key holds as many runs as it may: invoke again when the batch has fewer in flight.
    CONCURRENCY = "concurrency"
    #: Provably not started (the rate limit, a 503, a request that never left): invoke again after a pause.
    RESEND = "resend"
    #: It may have started a paid run that no answer confirmed.
    UNKNOWN = "unknown"
    #: The key or the endpoint is wrong: every item would meet the same, so the batch stops.
    FATAL = "fatal"
    #: Alta refused this input (400, 413, 422 or another 4xx): nothing started.
    REFUSED = "refused"


class QueryFailure(enum.Enum):
    """What a failed query means for its run."""

    #: Alta does not know the run (404).
    NOT_FOUND = "not_found"
    #: Worth waiting out (429, 5xx, network trouble).
    TRANSIENT = "transient"
    #: The key is rejected: the batch stops.
    FATAL = "fatal"
    #: The answer cannot be read (not the documented shape, nested too deeply).
    UNREADABLE = "unreadable"


def invoke_failure(exc: AltaError) -> InvokeFailure:
    if is_concurrency_limit(exc):
        return InvokeFailure.CONCURRENCY
    if may_retry(_INVOKE, exc):
        return InvokeFailure.RESEND
    if isinstance(exc, AltaInvokeOutcomeUnknownError) or outcome_unknown(_INVOKE, exc) is not exc:
        return InvokeFailure.UNKNOWN
    if isinstance(exc, (AltaAuthError, AltaNotFoundError)):
        return InvokeFailure.FATAL
    return InvokeFailure.REFUSED


def query_failure(exc: AltaError) -> QueryFailure:
    if isinstance(exc, AltaNotFoundError):
        return QueryFailure.NOT_FOUND
    if is_transient(exc):
        return QueryFailure.TRANSIENT
    if isinstance(exc, AltaAuthError):
        return QueryFailure.FATAL
    return QueryFailure.UNREADABLE


def describe(exc: AltaError) -> str:
    """An error as a result line tells it: its class and its text (never a key: errors carry none)."""
    return f"{type(exc).__name__}: {exc}"


def unknown_invoke(exc: AltaError) -> str:
    return (
        f"the invoke may have started a paid run, but no answer confirmed it ({describe(exc)}); not invoked again, "
        "to avoid a second paid run (retry_on_unknown_outcome=True allows it)"
    )


def unknown_run(run_id: str | None, exc: AltaError) -> str:
    return (
        f"Alta does not know the run {run_id} any more (it may have expired from its history), so how it ended "
        f"is unknown; not invoked again ({describe(exc)})"
    )


#: Why an item ends ``UNKNOWN`` when a lost try sent its invoke and no answer named the run.
LOST_INVOKE = (
    "a previous try was lost while this item's invoke was open, so a paid run may exist that no answer named "
    "(look for it in Alta's dashboard); not invoked again (retry_on_unknown_outcome=True allows it)"
)


def lost_invoke(waited: float | None) -> str:
    """:data:`LOST_INVOKE`, saying how long a webhook delivery naming the run was awaited (``None``: not at all)."""
    if waited is None:
        return LOST_INVOKE
    return f"{LOST_INVOKE}; no webhook delivery named its run within {waited:.0f} s"
