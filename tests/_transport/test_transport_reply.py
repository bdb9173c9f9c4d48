"""Reading what came off the wire: the body's encoding, and an answer's run, error and rate-limit figures."""

from __future__ import annotations

import time

import pytest

from airflow_provider_alta._core.connection import AltaConnectionConfig
from airflow_provider_alta._core.protocol import invoke_request, query_request
from airflow_provider_alta._core.ratelimit import RateBudget
from airflow_provider_alta._transport.reply import Reply, body_encoding, read_answer
from airflow_provider_alta.exceptions import AltaAuthError, AltaRateLimitError
from airflow_provider_alta.models import RunStatus

KEY = "sk-reply-SECRET-41d2"
CONFIG = AltaConnectionConfig(base_url="https://alta.example", api_key=KEY)
QUERY = query_request("run-1")


@pytest.mark.parametrize(
    ("declared", "used"),
    [
        (None, "utf-8"),
        ("", "utf-8"),
        ("UTF-8", "utf-8"),
        ("utf-16", "utf-16"),
        ("latin1", "iso8859-1"),
        ("nope", "utf-8"),
    ],
)
def test_the_declared_charset_when_python_knows_it_else_utf8(declared, used):
    assert body_encoding(declared) == used


def test_an_answer_gives_its_run_and_feeds_the_keys_budget():
    budget = RateBudget()
    reset = time.time() + 60
    headers = {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "42", "X-RateLimit-Reset": str(int(reset))}
    run = read_answer(QUERY, Reply(200, headers, '{"workflowRunId": "run-1", "status": "RUNNING"}'), budget, CONFIG)
    assert run.status is RunStatus.RUNNING
    assert (budget.snapshot().limit, budget.snapshot().remaining) == (100, 42)


def test_a_retry_after_holds_everyone_on_the_key():
    budget = RateBudget()
    body = '{"error": {"code": "RATE_LIMITED", "message": "slow down", "status": 429}}'
    with pytest.raises(AltaRateLimitError) as err:
        read_answer(QUERY, Reply(429, {"Retry-After": "30"}, body), budget, CONFIG)
    assert err.value.retry_after == 30
    assert budget.acquire(for_poll=False) > 25  # nobody sends before it passes


def test_a_concurrency_limits_retry_after_holds_no_query():
    budget = RateBudget()
    body = '{"error": {"code": "CONCURRENCY_LIMIT_EXCEEDED", "message": "too many runs", "status": 429}}'
    with pytest.raises(AltaRateLimitError) as caught:
        read_answer(invoke_request({"input": {}}), Reply(429, {"Retry-After": "2"}, body), budget, CONFIG)
    assert caught.value.retry_after == 2 and caught.value.code == "CONCURRENCY_LIMIT_EXCEEDED"
    assert budget.snapshot().blocked_until is None  # a run may start in 2 s; everyone may still query


def test_an_echoed_key_is_scrubbed_from_the_error():
    body = f'{{"error": {{"code": "UNAUTHORIZED", "message": "bad key {KEY}", "status": 401}}}}'
    with pytest.raises(AltaAuthError) as err:
        read_answer(QUERY, Reply(401, {}, body), RateBudget(), CONFIG)
    assert KEY not in str(err.value) + repr(err.value) + (err.value.api_message or "")
    assert "bad key" in str(err.value)
