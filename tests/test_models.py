from __future__ import annotations

import pickle

import pytest

from airflow_provider_alta.exceptions import AltaInvalidResponseError, AltaServerError
from airflow_provider_alta.models import RunStatus, WorkflowRun

DOC_EXAMPLE = {
    "workflowId": "wf-1",
    "workflowName": "todayNews",
    "workflowVersion": "1.0.1",
    "workflowRunId": "r-1",
    "input": {"topic": "News"},
    "output": {"news": [{"title": "t", "summary": "s", "media": "m"}]},
    "workflowExecutionTime": 8347,
    "status": "SUCCEED",
    "totalCost": 0.6928,
    "totalTokens": 1745,
    "startTime": 1700000000000,
    "endTime": 1700000008347,
}


def test_documented_example_parses():
    run = WorkflowRun.from_response(DOC_EXAMPLE)
    assert run.status is RunStatus.SUCCEED and run.is_terminal
    assert run.execution_time_ms == 8347
    assert run.describe() == "todayNews 1.0.1 run r-1"
    assert run.to_dict() == DOC_EXAMPLE


def test_to_dict_shares_the_output_instead_of_copying_it():
    run = WorkflowRun.from_response(DOC_EXAMPLE)
    assert run.to_dict()["output"] is run.raw["output"]  # a 20 MB output is not copied for a trigger event
    without = run.to_dict(without_output=True)
    assert "output" not in without and without["workflowRunId"] == "r-1" and "output" in run.raw


def test_unknown_fields_kept_and_optional_ones_tolerated():
    run = WorkflowRun.from_response({"workflowRunId": "r", "status": "RUNNING", "region": "eu"})
    assert run.raw["region"] == "eu"
    assert run.output is None and run.total_cost is None and not run.is_terminal
    with pytest.raises(AttributeError):
        run.status = RunStatus.FAILED  # type: ignore[misc]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "JSON list"),
        ({"status": "SUCCEED"}, "no 'workflowRunId'"),
        ({"workflowRunId": "r", "status": "DONE"}, "unknown run status 'DONE'"),
        ({"workflowRunId": "r"}, "unknown run status None"),
        ({"workflowRunId": "r", "status": "SUCCEED", "totalCost": "cheap"}, "'totalCost'"),
        ({"workflowRunId": "r", "status": "SUCCEED", "input": [1]}, "'input'"),
    ],
)
def test_malformed_bodies_are_typed_errors(body, message):
    with pytest.raises(AltaInvalidResponseError, match=message):
        WorkflowRun.from_response(body, endpoint="POST /x")


def test_failed_run_detail_from_any_known_field():
    run = WorkflowRun.from_response({"workflowRunId": "r", "status": "FAILED", "errorMessage": "boom"})
    assert run.error_detail == "boom"
    nested = WorkflowRun.from_response({"workflowRunId": "r", "status": "FAILED", "error": {"code": "X"}})
    assert "X" in nested.error_detail


def test_errors_pickle_with_their_facts():
    err = AltaServerError("down", status=503, code="UNAVAILABLE", endpoint="POST /q", workflow_run_id="r-1")
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.workflow_run_id == "r-1" and again.status == 503
