"""The API's protocol: reading the rate-limit and Retry-After headers."""

from __future__ import annotations

from airflow_provider_alta._core.protocol import parse_rate_limit, parse_retry_after


def test_retry_headers_parsed():
    assert parse_retry_after({"retry-after": "3"}) == 3
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0) == 10
    assert parse_retry_after({}) is None
    info = parse_rate_limit({"x-ratelimit-limit": "100", "X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "1700"})
    assert (info.limit, info.remaining, info.reset_at) == (100, 7, 1700.0)
