"""The emulator itself: documented shapes, webhooks, rate limits, fault injection."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from airflow_provider_alta.testing.workflows import DEFAULT_API_KEY


def post(url, path, body, key=DEFAULT_API_KEY):
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


def test_async_invoke_answer_is_the_documented_one(alta_emulator):
    status, _, body = post(alta_emulator.url, "/v1/workflow/invoke", {"input": {"topic": "x"}, "isAsync": True})
    assert status == 200
    assert set(body) == {"workflowId", "workflowName", "workflowVersion", "workflowRunId", "status"}
    assert body["status"] == "PENDING"


@pytest.mark.parametrize(
    ("path", "body", "key", "status", "code"),
    [
        ("/v1/workflow/invoke", {"input": {"topic": "x"}}, None, 401, "UNAUTHORIZED"),
        ("/v1/workflow/invoke", {"input": {"topic": "x"}}, "wrong", 401, "UNAUTHORIZED"),
        ("/v1/workflow/invoke", {"input": {"nope": 1}}, DEFAULT_API_KEY, 400, "INVALID_INPUT"),
        ("/v1/workflow/invoke", {"input": "x"}, DEFAULT_API_KEY, 400, "INVALID_REQUEST"),
        ("/v1/workflow/invoke", {"input": {"topic": "x" * 2_000_000}}, DEFAULT_API_KEY, 413, "PAYLOAD_TOO_LARGE"),
        ("/v1/workflow/query/result", {"workflowRunId": "missing"}, DEFAULT_API_KEY, 404, "RUN_NOT_FOUND"),
    ],
)
def test_errors_use_documented_shape(alta_emulator, path, body, key, status, code):
    got, _, answer = post(alta_emulator.url, path, body, key)
    assert got == status
    assert answer["error"]["code"] == code and answer["error"]["status"] == status


def test_rate_limit_headers_and_429(alta_emulator):
    alta_emulator.configure(rate_limit=2, rate_window=30)
    seen = [post(alta_emulator.url, "/v1/workflow/query/result", {"workflowRunId": "m"}) for _ in range(3)]
    assert [s[0] for s in seen] == [404, 404, 429]
    assert seen[0][1]["X-RateLimit-Remaining"] == "1"
    assert int(seen[2][1]["Retry-After"]) > 0 and seen[2][1]["X-RateLimit-Remaining"] == "0"


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list] = []

    def _record(self):
        length = int(self.headers.get("Content-Length") or 0)
        _Receiver.received.append(
            (self.command, self.path, self.headers.get("X-Token"), self.rfile.read(length) if length else b"")
        )
        self.send_response(204)
        self.end_headers()

    do_POST = do_GET = _record

    def log_message(self, *args):
        pass


def test_webhooks_delivered_on_completion(alta_emulator):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    _Receiver.received.clear()
    try:
        alta_emulator.configure(duration=0.3)
        _, _, body = post(
            alta_emulator.url,
            "/v1/workflow/invoke",
            {
                "input": {"topic": "x"},
                "isAsync": True,
                "webhook": [
                    {"method": "POST", "url": base + "/p", "headers": {"X-Token": "t1"}},
                    {"method": "GET", "url": base + "/g?a=1"},
                ],
            },
        )
        deadline = time.time() + 5
        while len(alta_emulator.stats()["webhook_deliveries"]) < 2 and time.time() < deadline:
            time.sleep(0.05)
    finally:
        server.shutdown()
    deliveries = alta_emulator.stats()["webhook_deliveries"]
    assert {d["status"] for d in deliveries} == {204}
    assert deliveries[0]["header_names"] == ["X-Token"]
    by_method = {r[0]: r for r in _Receiver.received}
    assert by_method["POST"][2] == "t1"
    assert json.loads(by_method["POST"][3])["status"] == "SUCCEED"
    assert f"workflowRunId={body['workflowRunId']}" in by_method["GET"][1] and "status=SUCCEED" in by_method["GET"][1]


def test_async_run_moves_through_states(alta_emulator):
    alta_emulator.configure(duration=0.6)
    _, _, body = post(alta_emulator.url, "/v1/workflow/invoke", {"input": {"topic": "x"}, "isAsync": True})
    statuses = []
    for _ in range(20):
        statuses.append(
            post(alta_emulator.url, "/v1/workflow/query/result", {"workflowRunId": body["workflowRunId"]})[2]["status"]
        )
        time.sleep(0.05)
    assert statuses[0] == "PENDING" and "RUNNING" in statuses and statuses[-1] == "SUCCEED"


def test_bad_fault_is_refused(alta_emulator):
    with pytest.raises(urllib.error.HTTPError):
        alta_emulator.inject("invoke", "explode")


def test_duration_field_sets_each_runs_duration(alta_emulator):
    alta_emulator.configure(duration=30.0, duration_field="seconds", input_schema=None)
    _, _, quick = post(alta_emulator.url, "/v1/workflow/invoke", {"input": {"seconds": 0.3}, "isAsync": True})
    _, _, usual = post(alta_emulator.url, "/v1/workflow/invoke", {"input": {"topic": "x"}, "isAsync": True})
    time.sleep(0.5)
    query = "/v1/workflow/query/result"
    assert post(alta_emulator.url, query, {"workflowRunId": quick["workflowRunId"]})[2]["status"] == "SUCCEED"
    assert post(alta_emulator.url, query, {"workflowRunId": usual["workflowRunId"]})[2]["status"] == "RUNNING"
    finished = post(alta_emulator.url, query, {"workflowRunId": quick["workflowRunId"]})[2]
    assert finished["workflowExecutionTime"] == 300


def test_a_keys_first_window_can_be_under_way_already(alta_emulator):
    alta_emulator.configure(rate_limit=1000, rate_window=3600.0, rate_window_age=3300.0, rate_used_before=400)
    before = time.time()
    _, headers, _ = post(alta_emulator.url, "/v1/workflow/invoke", {"input": {"topic": "x"}, "isAsync": True})
    assert headers["X-RateLimit-Remaining"] == "599"
    assert before + 295 <= int(headers["X-RateLimit-Reset"]) <= before + 302


def test_time_scale_runs_a_long_workflow_in_a_fraction_of_its_time(alta_emulator):
    alta_emulator.configure(duration=15.0, time_scale=0.01, webhook_delay=2.0)
    _, _, answer = post(alta_emulator.url, "/v1/workflow/invoke", {"input": {"topic": "x"}})
    assert (answer["status"], answer["workflowExecutionTime"]) == ("SUCCEED", 15000)  # what the workflow says
    record = alta_emulator.run(answer["workflowRunId"])
    assert record["ends_at"] - answer["startTime"] / 1000 == pytest.approx(0.15, abs=0.002)  # what the clock says


def test_time_scale_must_be_positive(alta_emulator):
    for bad in (0, -1, "fast", True):
        with pytest.raises(urllib.error.HTTPError):
            alta_emulator.configure(time_scale=bad)
