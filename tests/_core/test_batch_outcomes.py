"""What a failed request means for a batch's item, as a table (pure)."""

from __future__ import annotations

import pytest

from airflow_provider_alta._core.batch_concurrency import AdaptiveConcurrency
from airflow_provider_alta._core.batch_outcomes import InvokeFailure, QueryFailure, invoke_failure, query_failure
from airflow_provider_alta.exceptions import (
    AltaAuthError,
    AltaInvalidRequestError,
    AltaInvalidResponseError,
    AltaInvokeOutcomeUnknownError,
    AltaNotFoundError,
    AltaRateLimitError,
    AltaServerError,
    AltaTransportError,
)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (AltaRateLimitError("x", status=429, code="CONCURRENCY_LIMIT_EXCEEDED"), InvokeFailure.CONCURRENCY),
        (AltaRateLimitError("x", status=429, code="concurrent_runs"), InvokeFailure.CONCURRENCY),
        (AltaRateLimitError("x", status=429, code="RATE_LIMITED"), InvokeFailure.RESEND),
        (AltaRateLimitError("x", status=429), InvokeFailure.RESEND),
        (AltaServerError("x", status=503), InvokeFailure.RESEND),
        (AltaTransportError("x", sent=False), InvokeFailure.RESEND),
        (AltaTransportError("x", sent=True), InvokeFailure.UNKNOWN),
        (AltaServerError("x", status=502), InvokeFailure.UNKNOWN),
        (AltaInvalidResponseError("x", status=200), InvokeFailure.UNKNOWN),
        (AltaInvokeOutcomeUnknownError("x"), InvokeFailure.UNKNOWN),
        (AltaAuthError("x", status=401), InvokeFailure.FATAL),
        (AltaNotFoundError("x", status=404), InvokeFailure.FATAL),
        (AltaInvalidRequestError("x", status=422), InvokeFailure.REFUSED),
    ],
)
def test_invoke_failures(error, kind):
    assert invoke_failure(error) is kind


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (AltaNotFoundError("x", status=404), QueryFailure.NOT_FOUND),
        (AltaRateLimitError("x", status=429), QueryFailure.TRANSIENT),
        (AltaServerError("x", status=500), QueryFailure.TRANSIENT),
        (AltaTransportError("x", sent=True), QueryFailure.TRANSIENT),
        (AltaAuthError("x", status=403), QueryFailure.FATAL),
        (AltaInvalidResponseError("x", status=200), QueryFailure.UNREADABLE),
    ],
)
def test_query_failures(error, kind):
    assert query_failure(error) is kind


def test_the_limit_is_measured_down_and_probed_up_one_at_a_time():
    limit = AdaptiveConcurrency(10, quiet_period=5.0)
    limit.rejected(1.0)
    limit.rejected(1.5)  # the same crowd
    limit.settle(7, 2.0)
    assert (limit.limit, limit.cuts) == (7, 1)
    limit.tick(7, 6.9)
    assert limit.limit == 7 and limit.next_raise_at() == 7.0
    limit.tick(7, 7.0)
    assert limit.limit == 8
    limit.tick(3, 20.0)  # not using the limit: no reason to probe above it
    assert limit.limit == 8
    limit.settle(3, 21.0)  # nothing pending: nothing measured
    assert limit.limit == 8
