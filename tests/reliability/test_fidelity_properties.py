"""Property-based: arbitrary JSON either arrives exactly, or a typed error says why before the invoke or after it.

The oracle is Airflow itself: its XCom serde, the UTF-8 the wire needs, and the depth limit. Most examples
run at the pure-function level; the ones crossing the wire go to the emulator over HTTP.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_alta._airflow.finishing import finish_run
from airflow_provider_alta._core.finish_plan import FinishContract
from airflow_provider_alta._core.json_limits import (
    MAX_DEPTH,
    SERDE_LEGACY_PAIR,
    SERDE_RESERVED_KEYS,
    depth_of,
    json_problem,
)
from airflow_provider_alta._core.validation import ensure_json_object
from airflow_provider_alta.exceptions import AltaUnsupportedOutputError, AltaValidationError
from airflow_provider_alta.hooks.alta import AltaHook
from airflow_provider_alta.models import RunStatus, WorkflowRun
from tests._core.test_json_limits import nested

#: Any character, lone surrogates and control characters included.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=12)
KEYS = ANY_TEXT | st.sampled_from([*SERDE_RESERVED_KEYS, *SERDE_LEGACY_PAIR, "__version__", "__data__", "__x"])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | ANY_TEXT
    | st.sampled_from(["\ud800", "\udfff", "\x00\x1f\x7f", "\r\n", "line\n", "😀", "\u2028"])
)
TREES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=20,
)
DEEP = st.tuples(st.integers(MAX_DEPTH - 3, MAX_DEPTH + 3), SCALARS).map(lambda d: nested(d[0], d[1]))
VALUES = TREES | DEEP | st.lists(DEEP | TREES, max_size=3)
OBJECTS = st.dictionaries(KEYS, VALUES, max_size=4)


def serde():
    try:
        from airflow.sdk.serde import deserialize, serialize
    except ImportError:  # Airflow 3.0, 3.1
        from airflow.serialization.serde import deserialize, serialize
    return serialize, deserialize


def airflow_carries(value: Any) -> bool:
    """Whether ``value`` reaches a downstream task unchanged: serde, UTF-8 JSON, and the depth Airflow carries."""
    serialize, deserialize = serde()
    if depth_of(value, MAX_DEPTH) > MAX_DEPTH:
        return False
    try:
        wire = json.dumps(serialize(value), ensure_ascii=False).encode("utf-8")
        return deserialize(json.loads(wire)) == value
    except (AttributeError, ImportError, TypeError, ValueError, UnicodeEncodeError, KeyError):
        return False


@settings(max_examples=200, deadline=None)
@given(value=VALUES)
def test_the_check_agrees_with_airflow_itself(value):
    problem = json_problem(value, "output", for_xcom=True)
    assert (problem is None) == airflow_carries(value), problem
    if problem is not None:
        assert problem.path.startswith("output") and problem.reason
        str(problem).encode("utf-8")  # printable in any log, whatever the value held


class _Ti:
    """Records XCom pushes, as Airflow's task instance would receive them."""

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _finish(output: Any, output_format: str) -> Any:
    body = {"workflowRunId": "run-p", "status": "SUCCEED", "output": output}
    run = WorkflowRun.from_response(body, copy_body=False)
    assert run.status is RunStatus.SUCCEED
    log = SimpleNamespace(info=lambda *a: None, warning=lambda *a: None)
    return finish_run(run, FinishContract(push=True, output_format=output_format), context={"ti": _Ti()}, log=log)


@settings(max_examples=150, deadline=None)
@given(output=VALUES)
def test_a_finished_run_returns_what_xcom_carries_or_names_the_run(output):
    try:
        returned = _finish(output, "value")
    except AltaUnsupportedOutputError as err:
        assert err.workflow_run_id == "run-p" and "output_format='json'" in str(err)
        assert not airflow_carries(output)
    else:
        assert returned == output and airflow_carries(output)
    # The way out always works: JSON text that is valid UTF-8 and decodes to exactly the output.
    text = _finish(output, "json")
    text.encode("utf-8")
    assert json.loads(text) == output


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(run_input=OBJECTS)
def test_any_input_is_refused_before_the_invoke_or_arrives_exactly(alta_conn, alta_emulator, run_input):
    alta_emulator.configure(duration=0.0, input_schema=None, output_mode="echo")
    before = alta_emulator.invoke_count()
    try:
        ensure_json_object(run_input, "input", for_xcom=True)  # the operator's check
    except AltaValidationError as err:
        assert str(err).startswith("input") and "nothing was sent" in str(err)
        assert not airflow_carries(run_input)
        if json_problem(run_input, "input") is not None:  # Alta cannot carry it either: the hook refuses it too
            with pytest.raises(AltaValidationError):
                AltaHook().invoke_workflow(run_input)
        assert alta_emulator.invoke_count() == before
        return
    run = AltaHook().invoke_workflow(run_input)
    assert run.input == run_input and run.output == run_input
    assert _finish(run.output, "value") == run_input
    assert alta_emulator.invoke_count() == before + 1
