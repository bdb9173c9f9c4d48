"""The finish plan, table by table: a finished run and a task's contract give what the task pushes, returns or raises.

No Airflow and no network: the worker and the trigger apply these plans (tests/_airflow/test_triggerer_finish.py
holds the two appliers to the same XComs; the dag.test() suites run them end to end).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_alta._core.finish_plan import (
    XCOM_RECENT_DURATIONS,
    FinishContract,
    closing_line,
    plan_finish,
)
from airflow_provider_alta.exceptions import (
    AltaContractError,
    AltaError,
    AltaRunFailedError,
    AltaUnsupportedOutputError,
)
from airflow_provider_alta.failures import AltaWorkflowRunFailedError
from airflow_provider_alta.models import WorkflowRun

OUTPUT = {"news": [{"title": "A", "summary": "a"}]}
BODY = {
    "workflowRunId": "r-1",
    "status": "SUCCEED",
    "workflowName": "todayNews",
    "workflowVersion": "1.0.1",
    "input": {"topic": "AI"},
    "output": OUTPUT,
    "totalCost": 0.5,
    "totalTokens": 1200,
    "workflowExecutionTime": 15000,
}
FACTS = {
    "workflow_run_id": "r-1",
    "status": "SUCCEED",
    "total_cost": 0.5,
    "total_tokens": 1200,
    "workflow_execution_time_ms": 15000,
    "workflow_name": "todayNews",
    "workflow_version": "1.0.1",
}
FAILED = {"status": "FAILED", "output": None, "errorMessage": "Node 'Summarise' failed"}
UNCARRIED = {"__classname__": "x"}  # a key Airflow's XCom serde reserves
NEEDS_SUMMARY = {"type": "object", "required": ["summary"]}


def run(**changes: Any) -> WorkflowRun:
    return WorkflowRun.from_response({**BODY, **changes})


def without(facts: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in facts.items() if k not in keys}


@pytest.mark.parametrize(
    ("changes", "contract", "xcoms", "result"),
    [
        pytest.param({}, FinishContract(push=True), FACTS, OUTPUT, id="the output, and the run's facts"),
        pytest.param(
            {},
            FinishContract(push=True, recent_durations=[1.0, 2.0, 3.0, 4.0, 5.0]),
            {**FACTS, XCOM_RECENT_DURATIONS: [2.0, 3.0, 4.0, 5.0, 15000]},
            OUTPUT,
            id="the duration history keeps the last five",
        ),
        pytest.param(
            {"workflowExecutionTime": None},
            FinishContract(push=True, recent_durations=[1.0]),
            {**FACTS, "workflow_execution_time_ms": None},
            OUTPUT,
            id="a run without its time leaves the history alone",
        ),
        pytest.param(
            {},
            FinishContract(push=True, pushed_before=("workflow_run_id", "workflow_name", "workflow_version")),
            without(FACTS, "workflow_run_id", "workflow_name", "workflow_version"),
            OUTPUT,
            id="what was pushed before deferring is not pushed again",
        ),
        pytest.param(
            {}, FinishContract(push=False, recent_durations=[1.0]), {}, OUTPUT, id="a task that does not push"
        ),
        pytest.param(
            {"output": UNCARRIED},
            FinishContract(push=False),
            {},
            UNCARRIED,
            id="an output only XCom refuses, not pushed",
        ),
        pytest.param(
            {"totalCost": None, "totalTokens": None},
            FinishContract(push=True, max_cost=0.1, max_tokens=1),
            {**FACTS, "total_cost": None, "total_tokens": None},
            OUTPUT,
            id="a figure Alta did not report breaks no limit",
        ),
        pytest.param(
            {"output": None}, FinishContract(push=True), {**FACTS}, None, id="a run without output returns None"
        ),
    ],
)
def test_a_task_whose_run_succeeded_returns_its_output(changes, contract, xcoms, result):
    plan = plan_finish(run(**changes), contract)
    assert (plan.error, plan.warnings, plan.forget_run) == (None, (), True)
    assert plan.xcoms == xcoms
    assert plan.result == result


@pytest.mark.parametrize(
    ("changes", "contract", "error", "message", "forget_run"),
    [
        pytest.param(
            FAILED,
            FinishContract(push=True, recent_durations=[1.0]),
            AltaRunFailedError,
            "Alta workflow todayNews run ended FAILED: Node 'Summarise' failed",
            True,
            id="a FAILED run; its id is done with",
        ),
        pytest.param(
            {**FAILED, "errorMessage": None},
            FinishContract(push=True, failed_error=AltaWorkflowRunFailedError),
            AltaWorkflowRunFailedError,
            "ended FAILED: Alta gave no error detail",
            True,
            id="the sensor's own error",
        ),
        pytest.param(
            {},
            FinishContract(push=True, max_cost=0.1),
            AltaContractError,
            "The run used 0.5 (cost), over max_cost=0.1",
            False,
            id="over max_cost; the id is kept for a reattach",
        ),
        pytest.param(
            {},
            FinishContract(push=True, max_tokens=100),
            AltaContractError,
            "The run used 1200 (tokens), over max_tokens=100",
            False,
            id="over max_tokens",
        ),
        pytest.param(
            {},
            FinishContract(push=True, output_schema=NEEDS_SUMMARY),
            AltaContractError,
            "The workflow's output does not match output_schema at",
            False,
            id="an output that breaks output_schema",
        ),
        pytest.param(
            {"output": UNCARRIED},
            FinishContract(push=True),
            AltaUnsupportedOutputError,
            "Set output_format='json'",
            False,
            id="an output XCom cannot carry",
        ),
    ],
)
def test_a_task_that_fails_pushes_the_facts_and_names_the_run(changes, contract, error, message, forget_run):
    plan = plan_finish(run(**changes), contract)
    assert type(plan.error) is error and message in str(plan.error)
    assert isinstance(plan.error, AltaError) and plan.error.workflow_run_id == "r-1"
    assert plan.forget_run is forget_run
    assert plan.xcoms == {**FACTS, "status": run(**changes).status.value}  # no duration history
    assert plan.result is None and plan.with_return_value() == plan.xcoms


def test_limits_warn_only_warns_of_each_limit_and_returns():
    plan = plan_finish(run(), FinishContract(push=True, max_cost=0.1, max_tokens=100, limits_warn_only=True))
    assert plan.error is None and plan.result == OUTPUT
    assert plan.warnings == (
        "The run used 0.5 (cost), over max_cost=0.1 (run r-1); continuing because limits_warn_only=True",
        "The run used 1200 (tokens), over max_tokens=100 (run r-1); continuing because limits_warn_only=True",
    )


def test_a_warning_is_kept_when_the_schema_then_breaks():
    contract = FinishContract(push=True, max_cost=0.1, limits_warn_only=True, output_schema=NEEDS_SUMMARY)
    plan = plan_finish(run(), contract)
    assert isinstance(plan.error, AltaContractError) and len(plan.warnings) == 1


@pytest.mark.parametrize(
    "output",
    [OUTPUT, UNCARRIED, {"text": "a lone \ud800 surrogate"}, {"deep": json.loads("[" * 100 + "]" * 100)}],
)
def test_output_format_json_returns_text_that_reads_back_exactly(output):
    plan = plan_finish(run(output=output), FinishContract(push=True, output_format="json"))
    assert plan.error is None and isinstance(plan.result, str)
    assert json.loads(plan.result) == output
    plan.result.encode("utf-8")  # valid UTF-8, whatever the output holds


def test_an_output_too_deep_even_for_json_text_fails_clearly():
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    deep_run = WorkflowRun.from_response({**BODY, "output": {"deep": deep}}, copy_body=False)
    plan = plan_finish(deep_run, FinishContract(push=True, output_format="json"))
    assert isinstance(plan.error, AltaUnsupportedOutputError) and "nested too deeply" in str(plan.error)


@pytest.mark.parametrize(
    ("push", "changes", "ending"),
    [
        (True, {}, {**FACTS, "return_value": OUTPUT}),
        (True, {"output": None}, FACTS),  # a task returning None pushes no return value
        (False, {}, {}),
    ],
)
def test_a_task_ended_where_nothing_returns_pushes_its_return_value_itself(push, changes, ending):
    assert plan_finish(run(**changes), FinishContract(push=push)).with_return_value() == ending


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        ({}, "Alta todayNews 1.0.1 run r-1 ended SUCCEED in 15.0 s: cost 0.5 credits, 1200 tokens"),
        (
            {**FAILED, "totalCost": None, "totalTokens": None, "workflowExecutionTime": None},
            "Alta todayNews 1.0.1 run r-1 ended FAILED in 0.0 s: cost ? credits, ? tokens",
        ),
    ],
)
def test_the_closing_line_says_how_the_run_ended_and_what_it_cost(changes, line):
    assert closing_line(run(**changes)) == line
    assert plan_finish(run(**changes), FinishContract(push=False)).closing_line == line
