"""The control endpoints under ``/_emulator/``: a run's record, workflows put per key, resets."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.testing.wire import QUERY, post, start_run


def test_a_runs_record_shows_what_the_emulator_received(alta_emulator):
    alta_emulator.configure(duration=5)
    hooks = [{"method": "POST", "url": "http://127.0.0.1:9/h", "headers": {"X-Token": "secret"}}]
    _, _, body = post(
        alta_emulator.url,
        "/v1/workflow/invoke",
        {"input": {"topic": "Markets"}, "isAsync": True, "webhook": hooks},
    )
    post(alta_emulator.url, QUERY, {"workflowRunId": body["workflowRunId"]})
    record = alta_emulator.run(body["workflowRunId"])
    assert record["body"]["input"] == {"topic": "Markets"} and record["body"]["status"] == "SUCCEED"
    assert record["status_now"] in ("PENDING", "RUNNING") and record["queries"] == 1
    assert record["webhook_urls"] == ["http://127.0.0.1:9/h"] and "secret" not in json.dumps(record)


def test_an_unknown_run_answers_404(alta_emulator):
    with pytest.raises(urllib.error.HTTPError) as missing:
        alta_emulator.run("no-such-run")
    assert missing.value.code == 404


def test_a_workflow_put_for_a_key_serves_it_until_the_reset(alta_emulator):
    alta_emulator.configure(api_key="sk-new", name="summarise", input_schema=None, duration=0)
    status, _, body = start_run(alta_emulator.url, {"text": "x"}, key="sk-new")
    assert status == 200 and body["workflowName"] == "summarise"
    alta_emulator.reset()
    assert start_run(alta_emulator.url, {"text": "x"}, key="sk-new")[0] == 401


def test_a_workflow_without_a_key_is_refused(alta_emulator):
    request = urllib.request.Request(
        alta_emulator.url + "/_emulator/workflows", data=json.dumps({"workflow": {}}).encode(), method="PUT"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400
