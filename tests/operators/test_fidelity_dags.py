"""Outputs XCom cannot carry, end to end through ``dag.test()``: a clear failure naming the run, or JSON text."""

from __future__ import annotations

import pytest

from airflow_provider_alta._core.json_limits import MAX_DEPTH
from tests._core.test_json_limits import nested
from tests.dag_runner import plain, run_dag

pytestmark = pytest.mark.usefixtures("airflow_db", "alta_conn")


def all_objects(depth: int) -> dict:
    """Objects only: the deepest a deferred task's event gets (Airflow's serialisation wraps each object)."""
    value: dict = {}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


#: Everything Airflow's XCom turns into a trap, next to what it carries.
TRAPS = {
    "items": [{"ok": 1}, {"__id__": 7}],
    "legacy": {"__type": "dict", "__var": {"a": 1}},
    "text": "lone \ud800 surrogate",
    "deep": nested(100),
}
TRAP_PATH = 'output["items"][1]["__id__"]'
#: Awkward but carried: the deepest nesting supported (64 levels), control characters, a lone __version__, non-ASCII.
CARRIED = {
    "deep": all_objects(MAX_DEPTH - 1),
    "dunder": {"__version__": 2, "__data__": None},
    "s": "a\r\nb\n\x00\u2028😀\n",
}


@pytest.mark.parametrize("mode", ["sync", "deferred"])
def test_output_xcom_cannot_carry_fails_clearly_after_one_paid_run(alta_emulator, capsys, mode):
    alta_emulator.configure(duration=0.3, output=TRAPS)
    result = run_dag(f"t_carry_{mode}")
    out = plain(capsys.readouterr().out)
    # output_format="value": failed before the push, at once (a retry would reattach to the same output), with the
    # run id and the way out.
    assert result.ti("run_value").state == "failed" and result.ti("run_value").try_number == 1
    run_id = result.xcom("run_value", "workflow_run_id")
    assert "AltaUnsupportedOutputError" in out and f"workflow_run_id={run_id}" in out
    assert TRAP_PATH in out and "output_format='json'" in out
    # output_format="json": the downstream task decodes exactly what Alta answered.
    assert result.xcom("show_json") == ascii(
        alta_emulator.run(result.xcom("run_json", "workflow_run_id"))["body"]["output"]
    )
    assert result.xcom("show_json") == ascii(TRAPS)
    assert alta_emulator.invoke_count() == 2  # one run per task: the retry started no second run


def test_awkward_output_xcom_carries_reaches_downstream_exactly(alta_emulator):
    # Deferred only: its event is the deepest path (the XCom push and pull are the synchronous mode's too).
    alta_emulator.configure(duration=0.3, output=CARRIED)
    result = run_dag("t_carry_deferred")
    assert result.state == "success"
    assert result.xcom("show_value") == ascii(CARRIED)
    assert result.xcom("show_json") == ascii(CARRIED)
    assert alta_emulator.invoke_count() == 2


def test_unreadable_invoke_answer_keeps_the_run_id_so_the_retry_reattaches(alta_emulator, capsys):
    from airflow_provider_alta.hooks.alta import AltaHook

    alta_emulator.configure(duration=0.1)
    paid = AltaHook().invoke_workflow({"topic": "AI"}).workflow_run_id  # the run the unreadable answer names
    deep = "[" * 5_000 + "]" * 5_000
    alta_emulator.inject("invoke", "body", text=f'{{"workflowRunId": "{paid}", "status": "SUCCEED", "output": {deep}}}')
    result = run_dag("t_retry_once")
    out = plain(capsys.readouterr().out)
    assert "AltaInvokeOutcomeUnknownError" in out and f"workflow_run_id={paid}" in out
    assert result.state == "success" and result.ti("run").try_number == 2
    assert result.xcom("run", "workflow_run_id") == paid and "Reattaching to Alta" in out
    assert alta_emulator.request_count("invoke") == 2  # the run above and the unreadable answer: no third


def test_deferred_sensor_reads_an_output_its_event_cannot_carry_and_returns_json_text(alta_emulator):
    # An event carrying these would fail the resume (a lone surrogate, __type + __var): the task read them itself.
    alta_emulator.configure(duration=0.5, output=TRAPS)
    result = run_dag("t_sensor_json")
    assert result.state == "success"
    assert result.xcom("show_json") == ascii(TRAPS)
