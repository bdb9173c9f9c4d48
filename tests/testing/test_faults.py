"""Fault injection over HTTP: a queued fault answers the next matching requests instead of the emulator."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request

import pytest

from tests.testing.wire import INVOKE, QUERY, post, start_run


def test_a_status_fault_answers_in_the_documented_shape_then_passes(alta_emulator):
    alta_emulator.inject("invoke", "status", count=2, status=503, retry_after=1.5)
    answers = [start_run(alta_emulator.url, {"topic": "x"}) for _ in range(3)]
    assert [a[0] for a in answers] == [503, 503, 200]
    assert answers[0][1]["Retry-After"] == "1.5" and answers[0][2]["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert alta_emulator.stats()["runs"] == 1 and alta_emulator.stats()["pending_faults"] == 0


def test_after_lets_requests_through_before_the_fault(alta_emulator):
    alta_emulator.inject("query", "status", status=500, after=1)
    first, second = (post(alta_emulator.url, QUERY, {"workflowRunId": "m"})[0] for _ in range(2))
    assert (first, second) == (404, 500)


def test_drop_after_starts_the_run_but_never_answers(alta_emulator):
    alta_emulator.inject("invoke", "drop_after")
    request = urllib.request.Request(
        alta_emulator.url + INVOKE,
        data=json.dumps({"input": {"topic": "x"}, "isAsync": True}).encode(),
        headers={"Authorization": f"Bearer {alta_emulator.api_key}", "Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        urllib.request.urlopen(request, timeout=10)
    assert alta_emulator.stats()["runs"] == 1
    assert alta_emulator.stats()["request_log"][0]["status"] == "dropped"


def test_html_and_malformed_answers(alta_emulator):
    alta_emulator.inject("any", "html")
    alta_emulator.inject("any", "malformed", status=200)
    request = urllib.request.Request(alta_emulator.url + QUERY, data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as page:
        urllib.request.urlopen(request, timeout=10)
    assert page.value.code == 502 and b"<h1>502 Bad Gateway</h1>" in page.value.read()
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.read() == b'{"workflowRunId": "abc", "status": '


def test_bad_fault_is_refused(alta_emulator):
    with pytest.raises(urllib.error.HTTPError):
        alta_emulator.inject("invoke", "explode")
    with pytest.raises(urllib.error.HTTPError):
        alta_emulator.inject("everything", "status")
