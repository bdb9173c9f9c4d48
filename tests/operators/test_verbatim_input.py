"""Inputs reach Alta byte-exact: only strings with template syntax go through Jinja."""

from __future__ import annotations

import pytest

from airflow_provider_alta.exceptions import AltaValidationError
from airflow_provider_alta.operators.alta import AltaLiteral, AltaRunWorkflowOperator
from tests.dag_runner import run_dag

pytestmark = pytest.mark.usefixtures("airflow_db", "alta_conn")


def test_strings_without_templates_are_sent_exactly_and_literals_unrendered(alta_emulator):
    alta_emulator.configure(duration=0.1, input_schema=None, output_mode="echo")
    result = run_dag("t_verbatim")
    assert result.state == "success"
    sent = alta_emulator.run(result.xcom("run", "workflow_run_id"))["body"]["input"]
    assert sent == {
        "prompt": "line 1\r\nline 2\n\n",  # untouched: no template syntax
        "templated": "AI",  # rendered as Airflow renders (Jinja drops the trailing newline)
        "literal": "Answer in the form {{answer}} {% raw %} {#",  # AltaLiteral: never rendered
        "nested": ["tab\t\r\n", {"comment": "kept"}],
    }
    assert result.xcom("run") == sent  # and back, through XCom


def test_literal_is_checked_when_the_dag_is_parsed_not_left_for_rendering(alta_emulator):
    # A "{{" in a plain string defers its checks to rendering; in an AltaLiteral it is text, checked at once.
    AltaRunWorkflowOperator(task_id="later", input={"p": "{{ x }} \ud800"})
    with pytest.raises(AltaValidationError, match=r'input\["p"\] is not JSON-serialisable unchanged: a string with'):
        AltaRunWorkflowOperator(task_id="now", input={"p": AltaLiteral("{{ x }} \ud800")})
    assert alta_emulator.request_count() == 0
