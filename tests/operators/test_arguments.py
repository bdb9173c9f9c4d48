"""The operator's argument checks, called directly: each bad argument named with its fix, before any request.

tests/operators/test_operator.py builds operators with bad arguments; here the checks meet the values one by one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_alta._core.json_limits import MAX_DEPTH, AltaLiteral
from airflow_provider_alta.exceptions import AltaValidationError
from airflow_provider_alta.operators._arguments import (
    SETTINGS,
    check_settings,
    check_values,
    checked_input,
    checked_invoke,
    describe_mode,
    is_unrendered,
)

GOOD_SETTINGS: dict[str, Any] = {
    **dict.fromkeys(SETTINGS, False),
    "wait_for_completion": True,
    "webhook_fallback_interval": 60.0,
    "webhook_check_interval": 1.0,
    "timeout": None,
    "max_cost": None,
    "max_tokens": None,
}
HOOK = {"method": "POST", "url": "https://example.com/alta", "headers": {"X-Token": "t"}}


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


@dataclass
class Arguments:
    """The operator's templated arguments as the checks read them."""

    input: Any = field(default_factory=lambda: {"topic": "AI"})
    webhooks: Any = None
    user_id: Any = None
    input_schema: Any = None
    output_schema: Any = None
    airflow_webhook: bool = False
    asynchronous: bool = True
    _schema_dir: Path | None = None


def test_good_settings_pass():
    check_settings(GOOD_SETTINGS)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"durable": "yes"}, "durable must be True or False, got 'yes'"),
        ({"end_in_triggerer": 1}, "end_in_triggerer must be True or False, got 1"),
        ({"deferrable": True, "wait_for_completion": False}, "deferrable=True needs wait_for_completion=True"),
        ({"airflow_webhook": True}, "airflow_webhook=True needs deferrable=True"),
        ({"timeout": 0}, "timeout"),
        ({"max_cost": -1}, "max_cost"),
        ({"webhook_check_interval": None}, "webhook_check_interval"),
    ],
)
def test_a_bad_setting_is_named(changes, message):
    with pytest.raises(AltaValidationError, match=message.replace("(", "\\(")):
        check_settings({**GOOD_SETTINGS, **changes})


def test_max_cost_may_be_zero():
    check_settings({**GOOD_SETTINGS, "max_cost": 0, "max_tokens": 0})


@pytest.mark.parametrize(
    ("value", "unrendered"),
    [
        ("plain text", False),
        ({"a": ["{{ ds }}"]}, True),
        ({"a": [{"b": "{% if x %}"}]}, True),
        ("{# a comment #}", True),
        (AltaLiteral("{{ sent as written }}"), False),  # never rendered: checked when the DAG is parsed
        ({"n": 1, "t": (1, "x")}, False),
        (nested(10_000), False),  # iterative: no RecursionError
    ],
)
def test_what_airflow_will_still_replace(value, unrendered):
    assert is_unrendered(value) is unrendered


def test_an_xcomarg_is_unrendered():
    class FakeXComArg:
        def resolve(self, context: Any) -> Any: ...

    assert is_unrendered({"a": [FakeXComArg()]})


@pytest.mark.parametrize(
    ("value", "rendered", "checked"),
    [
        ({"topic": "AI"}, False, {"topic": "AI"}),
        ('{"topic": "AI"}', True, {"topic": "AI"}),
        ('{"topic": "{{ ds }}"}', False, '{"topic": "{{ ds }}"}'),  # read once rendered
    ],
)
def test_the_input_once_known_is_the_dict_it_holds(value, rendered, checked):
    assert checked_input(value, rendered=rendered) == checked


@pytest.mark.parametrize(
    ("value", "rendered", "message"),
    [
        ("not json", True, "input is a string that is not JSON"),
        ("[1, 2]", True, "input must be a JSON object"),
        ("[" * 100_000 + "]" * 100_000, True, f"at most {MAX_DEPTH} levels are carried"),
        ({"a": nested(MAX_DEPTH + 5), "t": "{{ ds }}"}, False, "nested too deeply|not JSON-serialisable"),
        ({"__classname__": "x"}, False, "not JSON-serialisable unchanged"),
    ],
)
def test_a_bad_input_is_named(value, rendered, message):
    with pytest.raises(AltaValidationError, match=message):
        checked_input(value, rendered=rendered)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (Arguments(webhooks=[HOOK], asynchronous=False), "webhooks are only delivered for asynchronous runs"),
        (Arguments(webhooks=[HOOK] * 5, airflow_webhook=True), "has 5 entries and airflow_webhook=True adds one"),
        (Arguments(output_schema={"type": "no such type"}), "output_schema"),
        (Arguments(input_schema="missing.json"), "input_schema"),
        (Arguments(user_id=42), "user_id"),
    ],
)
def test_a_bad_templated_argument_is_named(arguments, message):
    with pytest.raises(AltaValidationError, match=message):
        check_values(arguments, rendered=False)


def test_what_is_still_to_be_rendered_waits_for_it():
    arguments = Arguments(input='{"topic": "{{ ds }}"}', webhooks="{{ var.json.hooks }}", user_id="{{ run_id }}")
    check_values(arguments, rendered=False)
    assert arguments.input == '{"topic": "{{ ds }}"}'
    arguments.input, arguments.webhooks, arguments.user_id = '{"topic": "2026-01-01"}', [HOOK], 42  # rendered
    with pytest.raises(AltaValidationError, match="user_id"):
        check_values(arguments, rendered=True)
    assert arguments.input == {"topic": "2026-01-01"}  # the JSON string, read


def test_a_schema_path_is_read_beside_the_dag_file(tmp_path):
    (tmp_path / "in.json").write_text(json.dumps({"type": "object", "required": ["topic"]}))
    arguments = Arguments(input={"subject": "AI"}, input_schema="in.json", _schema_dir=tmp_path)
    check_values(arguments, rendered=True)
    with pytest.raises(AltaValidationError, match=r"input does not match input_schema at .*nothing was sent"):
        checked_invoke(arguments, None)


def test_the_receivers_webhook_is_made_once_the_input_passed_and_joins_the_users():
    made: list[str] = []

    def receiver() -> dict[str, Any]:
        made.append("receiver")
        return {"method": "POST", "url": "https://airflow.example/alta/webhook", "headers": {}}

    refused = Arguments(input={"a": 1}, input_schema={"type": "object", "required": ["topic"]})
    with pytest.raises(AltaValidationError, match="input_schema"):
        checked_invoke(refused, None, receiver)
    assert made == []
    sent = checked_invoke(Arguments(webhooks=[HOOK]), [HOOK], receiver)
    assert sent == [HOOK, receiver()]


@pytest.mark.parametrize(
    ("run_async", "deferrable", "wait_for_completion", "mode"),
    [
        (False, False, True, "synchronous"),
        (True, False, True, "async, waiting in the worker"),
        (False, True, True, "async, deferred to the triggerer"),
        (False, False, False, "async, not waiting"),
    ],
)
def test_the_mode_as_the_log_names_it(run_async, deferrable, wait_for_completion, mode):
    assert describe_mode(run_async, deferrable, wait_for_completion) == mode


def test_the_operator_is_what_the_checks_read():
    from airflow_provider_alta.operators.alta import AltaRunWorkflowOperator

    with DAG("d", schedule=None):
        task = AltaRunWorkflowOperator(task_id="t", input='{"topic": "AI"}', run_async=True, webhooks=[HOOK])
    assert task.input == {"topic": "AI"} and task.mode == "async, waiting in the worker"
    assert checked_invoke(task, task.webhooks) == [HOOK]
