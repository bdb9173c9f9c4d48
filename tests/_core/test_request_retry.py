"""When a failed request is sent again, after how long, and when an invoke's outcome is unknown (pure policy)."""

from __future__ import annotations

import random

import pytest
import tenacity

from airflow_provider_alta._core.protocol import invoke_request, query_request
from airflow_provider_alta._core.ratelimit import RateBudget
from airflow_provider_alta._core.request_retry import (
    RetrySettings,
    budget_wait,
    may_retry,
    outcome_unknown,
    retry_delay,
    tenacity_kwargs,
)
from airflow_provider_alta.exceptions import (
    AltaAuthError,
    AltaInvalidResponseError,
    AltaInvokeOutcomeUnknownError,
    AltaNotFoundError,
    AltaRateLimitError,
    AltaServerError,
    AltaTransportError,
    AltaValidationError,
)

INVOKE = invoke_request({"input": {}})
QUERY = query_request("r")


@pytest.mark.parametrize(
    ("exc", "invoke", "query"),
    [
        (AltaTransportError("refused", sent=False), True, True),
        (AltaTransportError("reset", sent=True), False, True),
        (AltaRateLimitError("429", status=429), True, True),
        (AltaServerError("503", status=503), True, True),
        (AltaServerError("500", status=500), False, True),
        (AltaServerError("502", status=502), False, True),
        (AltaServerError("504", status=504), False, True),
        (AltaAuthError("401", status=401), False, False),
        (AltaNotFoundError("404", status=404), False, False),
    ],
)
def test_retry_table(exc, invoke, query):
    assert may_retry(INVOKE, exc) is invoke
    assert may_retry(QUERY, exc) is query


def test_retry_after_is_honoured_over_backoff():
    exc = AltaRateLimitError("429", status=429, retry_after=7)
    assert retry_delay(exc, 1, RetrySettings(), random.Random(1)) == 7
    backoffs = [retry_delay(AltaServerError("x", status=502), n, RetrySettings(), random.Random(n)) for n in (1, 3, 9)]
    assert backoffs[0] <= 1.0 and 2.0 <= backoffs[1] <= 4.0 and backoffs[2] <= 30


@pytest.mark.parametrize(
    "exc",
    [
        AltaTransportError("read timed out", sent=True, workflow_run_id=None),
        AltaServerError("bad gateway", status=502),
        AltaInvalidResponseError("not JSON", workflow_run_id="r-7"),
    ],
)
def test_an_invoke_that_may_have_started_a_run_says_so(exc):
    unknown = outcome_unknown(INVOKE, exc)
    assert isinstance(unknown, AltaInvokeOutcomeUnknownError)
    assert "not retried, to avoid a second paid run" in str(unknown).lower()
    assert unknown.workflow_run_id == exc.workflow_run_id
    assert outcome_unknown(QUERY, exc) is exc  # a query starts nothing


@pytest.mark.parametrize(
    "exc",
    [AltaTransportError("refused", sent=False), AltaServerError("busy", status=503), AltaAuthError("no", status=401)],
)
def test_an_invoke_alta_provably_did_not_accept_keeps_its_error(exc):
    assert outcome_unknown(INVOKE, exc) is exc


def test_connection_extras_bound_the_retries():
    settings = RetrySettings.from_extras({"max_retries": 0, "retry_max_wait": 0, "retry_backoff": 0.5})
    assert (settings.max_attempts, settings.max_wait, settings.backoff_initial) == (1, 0.0, 0.5)
    assert RetrySettings.from_extras({}) == RetrySettings()
    for bad in ({"max_retries": -1}, {"max_retries": True}, {"retry_backoff": 0}):
        with pytest.raises(AltaValidationError):
            RetrySettings.from_extras(bad)


def test_tenacity_sends_an_invoke_again_only_when_it_never_arrived():
    settings = RetrySettings(max_attempts=3, backoff_initial=0.001, backoff_max=0.001)
    calls = {"refused": 0, "reset": 0}

    def send(kind: str) -> None:
        calls[kind] += 1
        raise AltaTransportError(kind, sent=kind == "reset")

    for kind in calls:
        with pytest.raises(AltaTransportError):
            tenacity.Retrying(**tenacity_kwargs(INVOKE, settings))(send, kind)
    assert calls == {"refused": 3, "reset": 1}


def test_a_request_waits_for_the_budget_only_as_long_as_retries_may():
    budget = RateBudget()
    assert budget_wait(budget, RetrySettings()) == 0  # nothing known: send now
    budget.block(30.0)
    assert 29 < budget_wait(budget, RetrySettings(max_wait=60)) <= 30
    with pytest.raises(AltaRateLimitError, match="nothing was sent") as err:
        budget_wait(budget, RetrySettings(max_wait=10))
    assert err.value.retry_after is not None and err.value.retry_after > 29
