"""What Alta and Airflow can carry: the pure checks, and deep JSON on the wire (emulator over HTTP)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from airflow_provider_alta._core.json_limits import MAX_DEPTH, depth_of, has_template_syntax, json_problem
from airflow_provider_alta._core.protocol import invoke_request, parse_response, query_request
from airflow_provider_alta.exceptions import (
    AltaInvokeOutcomeUnknownError,
    AltaResponseTooDeepError,
    AltaValidationError,
)
from airflow_provider_alta.hooks.alta import AltaHook
from tests.conftest import SECRET_KEY


def nested(depth: int, leaf: object = 1) -> object:
    """``depth`` levels of alternating objects and arrays around ``leaf``, built without recursion."""
    value = leaf
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


def deep_text(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("value", "for_xcom", "path", "reason"),
    [
        ({"items": [0, 1, 2, {"__id__": 1}]}, True, 'input["items"][3]["__id__"]', "reserved"),
        ({"a": {"__classname__": "x"}}, True, 'input["a"]["__classname__"]', "reserved"),
        ({"a": [{"__type": "dict", "__var": {}}]}, True, 'input["a"][0]["__type"]', "together"),
        ({"p": "ok \ud800"}, False, 'input["p"]', "surrogate"),
        ({"ok": {"\udfff": 1}}, False, 'input["ok"]["\\udfff"]', "surrogate"),
        ({"n": [float("nan")]}, False, 'input["n"][0]', "not a JSON number"),
        ({"s": {1, 2}}, False, 'input["s"]', "a set is not JSON"),
        ({"x": {3: "y"}}, False, 'input["x"]', "non-string key 3"),
        ({"d": nested(MAX_DEPTH)}, False, 'input["d"]', f"deeper than {MAX_DEPTH}"),
    ],
)
def test_first_problem_is_named_by_its_json_path(value, for_xcom, path, reason):
    problem = json_problem(value, "input", for_xcom=for_xcom)
    assert problem is not None
    assert problem.path.startswith(path) and reason in problem.reason


def test_what_airflow_carries_is_accepted():
    assert json_problem({"d": nested(MAX_DEPTH - 1)}, "input", for_xcom=True) is None
    # Only the exact reserved keys: each of these round-trips through Airflow's serde on 3.0 to 3.3.
    fine = {"__version__": 1, "__data__": 2, "__type": "x", "b": {"__var": 1}, "c": "\r\n\t\x00\u2028", "e": "😀"}
    assert json_problem(fine, "input", for_xcom=True) is None
    assert json_problem({"__id__": 1}, "input", for_xcom=False) is None  # plain JSON has no reserved keys


def test_thousands_of_levels_get_an_answer_not_a_recursion_error():
    value = nested(20_000)
    assert depth_of(value, MAX_DEPTH) == MAX_DEPTH + 1
    assert depth_of(value, 10**6) == 20_000
    problem = json_problem(value, "output")
    assert problem is not None and "deeper than" in problem.reason
    assert problem.path.startswith('output["k"][0]') and f"…{MAX_DEPTH - 12} levels…" in problem.path


def test_long_keys_are_cut_in_paths():
    problem = json_problem({"k" * 500: "\ud800"}, "input")
    assert problem is not None and len(problem.path) < 60


@pytest.mark.parametrize(
    ("text", "expected"), [("{{ x }}", True), ("{% if %}", True), ("{# note #}", True), ("{ x }", False)]
)
def test_template_syntax(text, expected):
    assert has_template_syntax(text) is expected


def test_deep_answer_to_a_query_is_typed_and_names_the_run():
    text = '{"workflowRunId": "r-1", "status": "SUCCEED", "output": ' + deep_text(50_000) + "}"
    with pytest.raises(AltaResponseTooDeepError) as err:
        parse_response(query_request("r-1"), 200, {}, text)
    assert err.value.workflow_run_id == "r-1" and err.value.endpoint == "POST /v1/workflow/query/result"


def test_run_id_of_a_deep_invoke_answer_is_read_from_its_text_but_not_from_its_output():
    head = '{"workflowId": "wf", "workflowRunId": "r-7", "status": "SUCCEED", '
    text = head + '"output": [{"workflowRunId": "other"}, ' + deep_text(50_000) + "]}"
    with pytest.raises(AltaResponseTooDeepError) as err:
        parse_response(invoke_request({"input": {}}), 200, {}, text)
    assert err.value.workflow_run_id == "r-7"
    only_in_output = '{"status": "SUCCEED", "output": [{"workflowRunId": "other"}, ' + deep_text(50_000) + "]}"
    with pytest.raises(AltaResponseTooDeepError) as err:
        parse_response(invoke_request({"input": {}}), 200, {}, only_in_output)
    assert err.value.workflow_run_id is None


def test_deep_error_body_still_gives_the_status_error():
    with pytest.raises(Exception) as err:
        parse_response(query_request("r-1"), 500, {}, deep_text(50_000))
    assert "HTTP 500" in str(err.value)


def test_deep_invoke_answer_over_http_is_outcome_unknown_naming_the_run(alta_conn, alta_emulator):
    text = '{"workflowRunId": "r-deep", "status": "SUCCEED", "output": ' + deep_text(5_000) + "}"
    alta_emulator.inject("invoke", "body", text=text)
    with pytest.raises(AltaInvokeOutcomeUnknownError) as err:
        AltaHook().invoke_workflow({"topic": "AI"})
    assert err.value.workflow_run_id == "r-deep" and "nested too deeply" in str(err.value)
    assert alta_emulator.request_count("invoke") == 1  # not retried: the run may exist


def test_deep_query_answer_over_http_is_typed(alta_conn, alta_emulator):
    alta_emulator.inject("query", "body", text='{"workflowRunId": "r-q", "output": ' + deep_text(5_000) + "}")
    with pytest.raises(AltaResponseTooDeepError) as err:
        AltaHook().get_run("r-q")
    assert "workflow_run_id=r-q" in str(err.value)


def test_deep_input_is_refused_before_any_request(alta_conn, alta_emulator):
    with pytest.raises(AltaValidationError, match=r'input\["x"\]\["k"\]\[0\].*52 levels'):
        AltaHook().invoke_workflow({"x": nested(400)})
    assert alta_emulator.request_count() == 0


@pytest.mark.parametrize("depth", [200, 50_000])
def test_emulator_answers_a_deep_body_with_the_documented_400(alta_emulator, depth):
    body = ('{"input": {"topic": ' + deep_text(depth) + "}}").encode()
    request = urllib.request.Request(
        alta_emulator.url + "/v1/workflow/invoke",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {alta_emulator.api_key}", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=10)
    assert answer.value.code == 400
    error = json.loads(answer.value.read())["error"]
    assert error["code"] == "INVALID_REQUEST" and error["status"] == 400 and "nested deeper" in error["message"]
    assert alta_emulator.invoke_count() == 0


def test_secret_key_is_not_in_deep_answer_errors(alta_conn, alta_emulator):
    alta_emulator.inject("query", "body", text=deep_text(5_000))
    with pytest.raises(AltaResponseTooDeepError) as err:
        AltaHook().get_run("r-x")
    assert SECRET_KEY not in str(err.value)


@pytest.mark.parametrize("template", [None, "{{ params.topic }}"])
def test_deep_input_fails_clearly_when_the_dag_is_parsed(alta_emulator, template):
    from airflow_provider_alta.operators.alta import AltaRunWorkflowOperator

    deep = nested(5_000, leaf=template or "plain")
    with pytest.raises(AltaValidationError, match="deeper than 64 levels"):
        AltaRunWorkflowOperator(task_id="deep", input={"x": deep, "t": template})
    assert alta_emulator.request_count() == 0
