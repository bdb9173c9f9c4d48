"""When a failed request may be sent again, and after how long (pure policy).

``invoke`` is not idempotent: it is repeated only when the request provably
never reached Alta (connection refused, DNS failure, connect timeout) or when
Alta said it did not accept it (429, 503). A query is safe to repeat, so it is
retried on every transient failure. The hooks hand these rules to tenacity's
``Retrying`` (sync) and ``AsyncRetrying`` (async).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from airflow_provider_alta._core.protocol import ApiRequest
from airflow_provider_alta._core.ratelimit import RateBudget
from airflow_provider_alta._core.validation import ensure_positive_number
from airflow_provider_alta.exceptions import (
    AltaError,
    AltaInvalidResponseError,
    AltaInvokeOutcomeUnknownError,
    AltaRateLimitError,
    AltaServerError,
    AltaTransportError,
    AltaValidationError,
)


@dataclass(frozen=True)
class RetrySettings:
    """Bounds of the retry loop around one request (connection extras can override them)."""

    max_attempts: int = 5
    max_wait: float = 120.0  # seconds spent retrying one request, at most
    backoff_initial: float = 1.0
    backoff_max: float = 30.0

    @classmethod
    def from_extras(cls, extras: dict[str, Any]) -> RetrySettings:
        defaults = cls()
        attempts = extras.get("max_retries")
        if attempts is not None and (not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 0):
            raise AltaValidationError(f"connection extra 'max_retries' must be a whole number >= 0, got {attempts!r}")
        return cls(
            max_attempts=1 + attempts if attempts is not None else defaults.max_attempts,
            max_wait=float(
                ensure_positive_number(
                    extras.get("retry_max_wait", defaults.max_wait),
                    "connection extra 'retry_max_wait'",
                    allow_zero=True,
                )
            ),
            backoff_initial=float(
                ensure_positive_number(
                    extras.get("retry_backoff", defaults.backoff_initial), "connection extra 'retry_backoff'"
                )
            ),
            backoff_max=defaults.backoff_max,
        )


def is_transient(exc: BaseException) -> bool:
    """A failure that may pass by itself: rate limit, 5xx, network trouble."""
    return isinstance(exc, (AltaRateLimitError, AltaServerError, AltaTransportError))


def may_retry(request: ApiRequest, exc: BaseException) -> bool:
    """Whether ``request`` may be sent again after failing with ``exc``."""
    if request.idempotent:
        return is_transient(exc)
    if isinstance(exc, AltaTransportError):
        return not exc.sent
    if isinstance(exc, AltaRateLimitError):
        return True
    return isinstance(exc, AltaServerError) and exc.status == 503


def backoff_delay(attempt: int, settings: RetrySettings, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter in its upper half: attempt 1 waits ~initial."""
    base = min(settings.backoff_max, settings.backoff_initial * (2 ** max(0, attempt - 1)))
    return base * (0.5 + 0.5 * (rng or random).random())


def retry_delay(exc: BaseException, attempt: int, settings: RetrySettings, rng: random.Random | None = None) -> float:
    """How long to wait before the next attempt: the server's word first, else backoff."""
    hinted = exc.retry_after if isinstance(exc, AltaError) else None
    backoff = backoff_delay(attempt, settings, rng)
    return max(hinted, backoff * 0.5) if hinted is not None else backoff


def budget_wait(budget: RateBudget, settings: RetrySettings) -> float:
    """Seconds a request waits for a ``Retry-After`` or an empty window its key already told us about (0: send it
    now; counts it). Longer than ``settings.max_wait`` is not waited: the request fails, not sent."""
    wait = budget.acquire(for_poll=False)
    if wait > settings.max_wait:
        raise AltaRateLimitError(
            f"The API key's rate limit is exhausted for another {wait:.0f} s; nothing was sent", retry_after=wait
        )
    return wait


def outcome_unknown(request: ApiRequest, exc: AltaError) -> AltaError:
    """Turn an invoke failure that may hide a started run into an explicit error.

    A read timeout, a dropped connection after sending, a 500/502/504, or a
    2xx answer that cannot be read on invoke may have started a paid run.
    Retrying could start a second one, so say that plainly and how to find
    out instead.
    """
    if request.idempotent:
        return exc
    ambiguous = (
        (isinstance(exc, AltaTransportError) and exc.sent)
        or (isinstance(exc, AltaServerError) and exc.status != 503)
        or isinstance(exc, AltaInvalidResponseError)
    )
    if not ambiguous:
        return exc
    return AltaInvokeOutcomeUnknownError(
        f"The invoke request may have started a workflow run, but no answer confirmed it ({exc.cause}). "
        "It was not retried, to avoid a second paid run. Check the run history in Alta's dashboard "
        "before running the task again",
        **exc.api_facts(),
        workflow_run_id=exc.workflow_run_id,
    )


def tenacity_kwargs(request: ApiRequest, settings: RetrySettings, on_retry: Any = None) -> dict[str, Any]:
    """Arguments for ``tenacity.Retrying`` / ``AsyncRetrying`` applying this policy to ``request``."""
    import tenacity

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return retry_delay(exc, state.attempt_number, settings) if exc else 0.0

    kwargs: dict[str, Any] = {
        "retry": tenacity.retry_if_exception(lambda exc: may_retry(request, exc)),
        "wait": wait,
        "stop": tenacity.stop_after_attempt(settings.max_attempts) | tenacity.stop_before_delay(settings.max_wait),
        "reraise": True,
    }
    if on_retry is not None:
        kwargs["before_sleep"] = on_retry
    return kwargs
