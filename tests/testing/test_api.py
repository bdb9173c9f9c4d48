"""Alta's two endpoints as the emulator serves them: the documented shapes, errors and run states."""

from __future__ import annotations

import pytest

from airflow_provider_alta.testing.workflows import DEFAULT_API_KEY
from tests.testing.wire import INVOKE, QUERY, post, query, start_run, wait_for


def test_async_invoke_answer_is_the_documented_one(alta_emulator):
    status, _, body = start_run(alta_emulator.url, {"topic": "x"})
    assert status == 200
    assert set(body) == {"workflowId", "workflowName", "workflowVersion", "workflowRunId", "status"}
    assert body["status"] == "PENDING"


@pytest.mark.parametrize(
    ("path", "body", "key", "status", "code"),
    [
        (INVOKE, {"input": {"topic": "x"}}, None, 401, "UNAUTHORIZED"),
        (INVOKE, {"input": {"topic": "x"}}, "wrong", 401, "UNAUTHORIZED"),
        (INVOKE, {"input": {"nope": 1}}, DEFAULT_API_KEY, 400, "INVALID_INPUT"),
        (INVOKE, {"input": "x"}, DEFAULT_API_KEY, 400, "INVALID_REQUEST"),
        (INVOKE, {"input": {"topic": "x" * 2_000_000}}, DEFAULT_API_KEY, 413, "PAYLOAD_TOO_LARGE"),
        (INVOKE, {"input": {"topic": "x"}, "webhook": [{}] * 6}, DEFAULT_API_KEY, 400, "INVALID_REQUEST"),
        (QUERY, {"workflowRunId": "missing"}, DEFAULT_API_KEY, 404, "RUN_NOT_FOUND"),
        (QUERY, {}, DEFAULT_API_KEY, 400, "INVALID_REQUEST"),
        (QUERY, [], DEFAULT_API_KEY, 400, "INVALID_REQUEST"),
    ],
)
def test_errors_use_documented_shape(alta_emulator, path, body, key, status, code):
    got, _, answer = post(alta_emulator.url, path, body, key)
    assert got == status
    assert answer["error"]["code"] == code and answer["error"]["status"] == status
    assert alta_emulator.stats()["runs"] == 0


def test_a_synchronous_invoke_answers_the_finished_run(alta_emulator):
    alta_emulator.configure(duration=0.1)
    status, _, body = post(alta_emulator.url, INVOKE, {"input": {"topic": "Markets"}})
    assert status == 200 and body["status"] == "SUCCEED"
    assert body["output"]["news"][0]["title"] == "Markets: the day's leading story"
    assert (body["totalCost"], body["totalTokens"], body["workflowExecutionTime"]) == (0.6928, 1745, 100)


def test_async_run_moves_through_states(alta_emulator):
    alta_emulator.configure(duration=0.6)
    _, _, body = start_run(alta_emulator.url, {"topic": "x"})
    statuses: list[str] = []

    def finished() -> bool:
        statuses.append(query(alta_emulator.url, body["workflowRunId"])["status"])
        return statuses[-1] == "SUCCEED"

    wait_for(finished)
    assert statuses[0] == "PENDING" and "RUNNING" in statuses and statuses[-1] == "SUCCEED"


def test_a_failed_run_carries_an_error_message_and_half_the_bill(alta_emulator):
    alta_emulator.configure(duration=0, outcome="fail")
    _, _, body = start_run(alta_emulator.url, {"topic": "x"})
    answer = query(alta_emulator.url, body["workflowRunId"])
    assert answer["status"] == "FAILED" and answer["output"] is None and "failed" in answer["errorMessage"]
    assert (answer["totalCost"], answer["totalTokens"]) == (0.3464, 872)


def test_another_keys_run_is_not_found(alta_emulator):
    alta_emulator.configure(api_key="sk-other")
    _, _, body = start_run(alta_emulator.url, {"topic": "x"})
    status, _, answer = post(alta_emulator.url, QUERY, {"workflowRunId": body["workflowRunId"]}, "sk-other")
    assert (status, answer["error"]["code"]) == (404, "RUN_NOT_FOUND")


def test_duration_field_sets_each_runs_duration(alta_emulator):
    alta_emulator.configure(duration=30.0, duration_field="seconds", input_schema=None)
    _, _, quick = start_run(alta_emulator.url, {"seconds": 0.3})
    _, _, usual = start_run(alta_emulator.url, {"topic": "x"})
    wait_for(lambda: query(alta_emulator.url, quick["workflowRunId"])["status"] == "SUCCEED")
    assert query(alta_emulator.url, usual["workflowRunId"])["status"] == "RUNNING"
    assert query(alta_emulator.url, quick["workflowRunId"])["workflowExecutionTime"] == 300


def test_time_scale_runs_a_long_workflow_in_a_fraction_of_its_time(alta_emulator):
    alta_emulator.configure(duration=15.0, time_scale=0.01, webhook_delay=2.0)
    _, _, answer = post(alta_emulator.url, INVOKE, {"input": {"topic": "x"}})
    assert (answer["status"], answer["workflowExecutionTime"]) == ("SUCCEED", 15000)  # what the workflow says
    record = alta_emulator.run(answer["workflowRunId"])
    assert record["ends_at"] - answer["startTime"] / 1000 == pytest.approx(0.15, abs=0.002)  # what the clock says


def test_queries_not_found_answers_a_runs_first_queries_404(alta_emulator):
    alta_emulator.configure(duration=0, queries_not_found=2)
    _, _, body = start_run(alta_emulator.url, {"topic": "x"})
    statuses = [post(alta_emulator.url, QUERY, {"workflowRunId": body["workflowRunId"]})[0] for _ in range(3)]
    assert statuses == [404, 404, 200]
