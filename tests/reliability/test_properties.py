"""Property-based: any JSON input survives the trip, and no answer crashes the parser untyped."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_alta._core.protocol import invoke_request, parse_response, query_request
from airflow_provider_alta.exceptions import AltaApiError, AltaInvalidResponseError
from airflow_provider_alta.hooks.alta import AltaHook
from airflow_provider_alta.models import WorkflowRun

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)
INPUTS = st.dictionaries(st.text(max_size=12), JSON, max_size=6)
SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _through_xcom(value):
    """What a downstream task reads back: Airflow's XCom serialisation, as JSON on the wire."""
    try:
        from airflow.sdk.serde import deserialize, serialize
    except ImportError:  # Airflow 3.0, 3.1
        from airflow.serialization.serde import deserialize, serialize

    return deserialize(json.loads(json.dumps(serialize(value))))


@SLOW
@given(run_input=INPUTS)
def test_any_json_input_round_trips_invoke_emulator_xcom(alta_conn, alta_emulator, run_input):
    alta_emulator.configure(duration=0.0, input_schema=None, output_mode="echo")
    run = AltaHook().invoke_workflow(run_input)
    assert run.input == run_input
    assert run.output == run_input
    # Airflow's serde reserves dunder keys for its own envelopes; all other data round-trips.
    if not _has_dunder_key(run_input):
        assert _through_xcom(run.output) == run_input


def _has_dunder_key(value) -> bool:
    if isinstance(value, dict):
        return any(k.startswith("__") or _has_dunder_key(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_dunder_key(v) for v in value)
    return False


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200) | JSON.map(json.dumps), status=st.sampled_from([200, 201, 204, 299]))
def test_any_2xx_body_parses_or_is_typed_invalid(text, status):
    for request in (query_request("run-1"), invoke_request({"input": {}})):
        try:
            run = parse_response(request, status, {}, text)
        except AltaInvalidResponseError as err:
            assert err.endpoint == request.endpoint
        else:
            assert isinstance(run, WorkflowRun)


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(max_size=200) | JSON.map(json.dumps),
    status=st.integers(300, 599),
    headers=st.dictionaries(
        st.sampled_from(["Retry-After", "X-RateLimit-Reset", "X-RateLimit-Remaining", "Content-Type"]),
        st.text(max_size=30),
    ),
)
def test_any_error_answer_is_a_typed_api_error(text, status, headers):
    with pytest.raises(AltaApiError) as err:
        parse_response(query_request("run-1"), status, headers, text)
    assert f"HTTP {status}" in str(err.value) and "run-1" in str(err.value)


@settings(max_examples=300, deadline=None)
@given(
    body=st.dictionaries(
        st.sampled_from(
            ["workflowRunId", "status", "totalCost", "totalTokens", "input", "output", "startTime", "extra"]
        ),
        JSON,
    )
)
def test_any_run_shaped_object_parses_or_is_typed_invalid(body):
    try:
        run = WorkflowRun.from_response(body)
    except AltaInvalidResponseError as err:
        assert err.cause
    else:
        assert run.workflow_run_id == body["workflowRunId"] and run.status.value == body["status"]
        assert run.raw == body
