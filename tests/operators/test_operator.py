"""AltaRunWorkflowOperator in real DAG runs (dag.test) against the emulator."""

from __future__ import annotations

import re

import pytest

from airflow_provider_alta._airflow.version_compat.task import callback_parse_deactivates_dags
from airflow_provider_alta.exceptions import AltaValidationError
from airflow_provider_alta.operators.alta import AltaRunWorkflowOperator
from tests.dag_runner import plain, run_dag

pytestmark = pytest.mark.usefixtures("airflow_db", "alta_conn")


def expected_output(emulator, run_id):
    return emulator.run(run_id)["body"]["output"]


def test_sync_mode_returns_output_and_all_xcoms(alta_emulator, capsys):
    alta_emulator.configure(duration=0.2)
    result = run_dag("t_sync")
    assert result.state == "success"
    out = plain(capsys.readouterr().out)
    assert "Invoking the Alta workflow of connection 'alta_default' synchronously" in out
    assert "Alta started" not in out and "ended SUCCEED" in out
    run_id = result.xcom("run", "workflow_run_id")
    assert result.xcom("run") == expected_output(alta_emulator, run_id)
    assert result.xcom("count_news") == 2  # a TaskFlow task consumed the output
    assert result.xcom("run", "status") == "SUCCEED"
    assert result.xcom("run", "total_cost") == pytest.approx(0.6928)
    assert result.xcom("run", "total_tokens") == 1745
    assert result.xcom("run", "workflow_execution_time_ms") == 200
    assert result.xcom("run", "workflow_name") == "todayNews"
    assert result.xcom("run", "workflow_version") == "1.0.1"
    assert alta_emulator.invoke_count() == 1
    assert alta_emulator.request_count("query") == 0  # one synchronous request, nothing else


def test_async_worker_mode(alta_emulator, capsys):
    alta_emulator.configure(duration=1.0)
    result = run_dag("t_async_worker")
    assert result.state == "success"
    assert "XCom not found" not in capsys.readouterr().out  # no history yet is not an error
    run_id = result.xcom("run", "workflow_run_id")
    assert result.xcom("run") == expected_output(alta_emulator, run_id)
    assert 1 <= alta_emulator.request_count("query") <= 8


def test_no_wait_returns_run_id_at_once(alta_emulator):
    alta_emulator.configure(duration=30)
    result = run_dag("t_no_wait")
    assert result.state == "success"
    run_id = result.xcom("run")
    assert run_id == result.xcom("run", "workflow_run_id")
    assert alta_emulator.run(run_id)["status_now"] in ("PENDING", "RUNNING")
    assert alta_emulator.request_count("query") == 0
    assert durable_variables("t_no_wait") == []  # the task succeeded: nothing kept for a retry


def test_failed_run_fails_task_with_run_id(alta_emulator, capsys):
    alta_emulator.configure(duration=0.3, outcome="fail")
    result = run_dag("t_failed")
    assert result.state == "failed"
    run_id = result.xcom("run", "workflow_run_id")
    out = plain(capsys.readouterr().out)
    assert "AltaRunFailedError" in out
    assert f"workflow_run_id={run_id}" in out
    assert "todayNews" in out and "Summarise" in out
    assert result.xcom("run", "status") == "FAILED"
    assert durable_variables("t_failed") == []  # a FAILED run leaves nothing to reattach to


def test_timeout_fails_task_saying_run_may_continue(alta_emulator, capsys):
    alta_emulator.configure(duration=30)
    result = run_dag("t_timeout")
    assert result.state == "failed"
    out = plain(capsys.readouterr().out)
    assert "AltaTimeoutError" in out and "may still be running" in out
    assert result.xcom("run", "workflow_run_id") in out


def test_contracts(alta_emulator, capsys):
    alta_emulator.configure(duration=0.1)
    result = run_dag("t_contracts")
    out = plain(capsys.readouterr().out)
    assert result.ti("schema_ok").state == "success"
    assert result.ti("schema_broken").state == "failed"
    assert "does not match output_schema at $: 'headline' is a required property" in out
    assert result.ti("too_expensive").state == "failed"
    assert "over max_cost=0.1" in out
    assert result.ti("warn_only").state == "success"
    assert "over max_tokens=10" in out and "limits_warn_only" in out
    assert result.xcom("too_expensive", "total_cost") == pytest.approx(0.6928)


def test_input_schema_violation_sends_nothing(alta_emulator, capsys):
    result = run_dag("t_input_schema")
    assert result.state == "failed"
    assert "input does not match input_schema at $['topic']" in plain(capsys.readouterr().out)
    assert alta_emulator.request_count() == 0


def test_templated_input_from_upstream(alta_emulator):
    alta_emulator.configure(duration=0.1)
    result = run_dag("t_templated")
    assert result.state == "success"
    for task_id in ("from_xcomarg", "from_jinja"):
        assert result.xcom(task_id)["news"][0]["title"] == "Templated: the day's leading story"


def test_mapped_over_five_inputs(alta_emulator):
    alta_emulator.configure(duration=0.1)
    result = run_dag("t_mapped")
    assert result.state == "success"
    titles = [result.xcom("run", map_index=i)["news"][0]["title"] for i in range(5)]
    assert titles == [f"T{i}: the day's leading story" for i in range(5)]
    assert alta_emulator.invoke_count() == 5


def test_mapped_taskflow_runs_green_with_no_error_lines_and_pools_its_history(alta_emulator, capsys):
    """A mapped instance whose siblings pushed their duration history first, or whose own map index never did,
    reads no missing XCom (Airflow logs each one as an error): it pools its task's histories instead."""
    alta_emulator.configure(duration=0.3)
    first = run_dag("t_mapped_taskflow")
    first_out = capsys.readouterr().out
    second = run_dag("t_mapped_taskflow")
    second_out = capsys.readouterr().out
    assert first.state == second.state == "success"
    for out in (first_out, second_out):
        errors = [line for line in plain(out).split(" 20") if "[error" in line or "XCom not found" in line]
        assert not errors, errors[:3]
    assert first.xcom("mapped_spend") == [pytest.approx(0.6928)] * 4
    # Every instance of the second run learned from the first run's instances, its own map index or not (dag.test()
    # runs them one by one; on 3.1+ the first run's later instances learn from their siblings already).
    histories = [second.xcom("mapped_news", "alta_recent_execution_times_ms", map_index=i) for i in range(4)]
    assert all(len(history) >= 2 and set(history) == {300} for history in histories), histories
    assert "Earlier runs took 0.3 to 0.3 s: first query after 0.3 s" in plain(second_out)
    assert alta_emulator.invoke_count() == 8


def durable_variables(dag_id: str) -> list[str]:
    """The run-id Variables a DAG's tasks keep before Airflow 3.3 (none once a task has succeeded)."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        found = session.query(Variable.key).filter(
            Variable.key.like("alta_run_id.%"), Variable.description.like(f"Alta run of {dag_id}/%")
        )
        return [key for (key,) in found]


@pytest.mark.parametrize("dag_id", ["t_durable_live", "t_durable_finished", "t_deferred_retry"])
def test_retry_reattaches_instead_of_paying_twice(alta_emulator, dag_id, capsys):
    alta_emulator.configure(duration=1.0)
    result = run_dag(dag_id)
    assert result.state == "success"
    assert result.ti("run").try_number == 2
    assert alta_emulator.invoke_count() == 1
    run_id = result.xcom("run", "workflow_run_id")
    assert result.xcom("run") == expected_output(alta_emulator, run_id)
    out = plain(capsys.readouterr().out)
    assert "Run id kept in" in out and "Reattaching to Alta" in out
    assert durable_variables(dag_id) == []  # cleaned up when the task succeeded


@pytest.mark.parametrize("allowed", [False, True], ids=["refused", "retry_on_unknown_outcome"])
def test_a_stored_run_alta_does_not_know_is_not_replaced_unless_allowed(alta_emulator, allowed, capsys):
    dag_id = "t_durable_unknown_allowed" if allowed else "t_durable_unknown"
    alta_emulator.configure(duration=0.3)
    alta_emulator.inject("query", "status", status=404)  # try 2 asks for the run try 1 stored: Alta knows none
    result = run_dag(dag_id)
    out = plain(capsys.readouterr().out)
    assert result.ti("run").try_number == 2  # refused: failed fast, no try 3; allowed: the new run succeeded
    if allowed:
        assert result.state == "success"
        assert alta_emulator.invoke_count() == 2  # the allowed replacement
        assert "unknown to Alta (RUN_NOT_FOUND); starting a new run (retry_on_unknown_outcome=True)" in out
    else:
        assert result.state == "failed"
        assert alta_emulator.invoke_count() == 1
        run_id = re.search(r"Alta started todayNews 1.0.1 run ([\w-]+)", out)[1]  # try 2 cleared the XComs
        assert f"AltaRunUnknownFailure: Alta does not know the run {run_id} that a previous try" in out
        assert "code=RUN_NOT_FOUND" in out and "Not retried: look for the run in Alta's dashboard" in out
        assert "clearing the task starts a new run" in out
    assert durable_variables(dag_id) == []  # refused: dropped, so that clearing the task starts a new run


def test_worker_lost_during_a_synchronous_invoke_does_not_pay_twice(alta_emulator, capsys):
    alta_emulator.configure(duration=0.3)
    result = run_dag("t_sync_lost")
    assert result.state == "failed"
    assert result.ti("run").try_number == 2
    assert alta_emulator.invoke_count() == 1  # the retry found the mark and did not invoke again
    out = plain(capsys.readouterr().out)
    assert "A previous try of this task was lost during its synchronous invoke (sent at 20" in out
    assert "run_async=True or deferrable=True get the run's id at once" in out
    assert "retry_on_unknown_outcome=True lets Airflow retry" in out
    assert durable_variables("t_sync_lost") == []  # the mark is gone: clearing the task starts a new run


def test_worker_lost_during_a_synchronous_invoke_may_pay_again_when_allowed(alta_emulator, capsys):
    alta_emulator.configure(duration=0.3)
    result = run_dag("t_sync_lost_pay_again")
    assert result.state == "success"
    assert alta_emulator.invoke_count() == 2
    out = plain(capsys.readouterr().out)
    assert "its run cannot be found: starting a new run (retry_on_unknown_outcome=True)" in out
    assert durable_variables("t_sync_lost_pay_again") == []


def test_variable_store_round_trips_on_every_airflow():
    result = run_dag("t_variable_store")
    assert result.state == "success"
    assert result.xcom("variable_store_round_trip").startswith("the Airflow Variable 'alta_run_id.")
    assert durable_variables("t_variable_store") == []


def test_deferrable_success(alta_emulator, capsys):
    alta_emulator.configure(duration=1.0)
    result = run_dag("t_deferrable")
    assert result.state == "success"
    run_id = result.xcom("run", "workflow_run_id")
    out = plain(capsys.readouterr().out)
    # The trigger names the run as the task did, from its first line on.
    assert f"Alta todayNews 1.0.1 run {run_id} is PENDING" in out
    assert "Alta workflow run" not in out
    assert result.xcom("run")["news"][0]["title"].startswith("Deferred:")
    assert result.xcom("run", "total_tokens") == 1745
    assert alta_emulator.invoke_count() == 1
    assert alta_emulator.run(run_id)["queries"] >= 1


def test_deferrable_under_dag_test_resumes_to_finish(alta_emulator, capsys):
    """dag.test() runs the trigger inline and resumes the task whatever it yields: the trigger never ends it."""
    alta_emulator.configure(duration=0.5)
    result = run_dag("t_deferrable")
    assert result.state == "success"
    out = plain(capsys.readouterr().out)
    if callback_parse_deactivates_dags():  # Airflow 3.0: no task ends in the triggerer, and the log says why
        assert "The task resumes on a worker after its run, not in the triggerer: on this Airflow (3.0)" in out
        assert "then the task resumes on a worker" in out
    else:
        assert "the triggerer waits for Alta" in out and "and ends the task when it succeeds" in out
        assert "Not in a triggerer (dag.test() runs triggers inline): the task resumes to finish" in out
    assert "ends here, in the triggerer" not in out
    assert out.count("ended SUCCEED") == 1  # the closing line, once, from the resumed task


def test_deferrable_failed(alta_emulator, capsys):
    alta_emulator.configure(duration=0.5, outcome="fail")
    result = run_dag("t_deferrable")
    assert result.state == "failed"
    assert "ended FAILED" in plain(capsys.readouterr().out)


def test_deferrable_timeout(alta_emulator, capsys):
    alta_emulator.configure(duration=30)
    result = run_dag("t_deferrable_timeout")
    assert result.state == "failed"
    out = plain(capsys.readouterr().out)
    assert "AltaTimeoutError" in out and result.xcom("run", "workflow_run_id") in out


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input": [1, 2]}, "input must be a JSON object"),
        ({"input": "not json"}, "not JSON"),
        ({"input": {"t": {1, 2}}}, "not JSON-serialisable"),
        ({"input": {}, "deferrable": True, "wait_for_completion": False}, "deferrable=True needs"),
        ({"input": {}, "webhooks": [{"method": "POST", "url": "https://x.io"}]}, "only delivered for asynchronous"),
        ({"input": {}, "run_async": True, "webhooks": [{"method": "POST", "url": "https://x"}] * 6}, "at most 5"),
        ({"input": {}, "timeout": -1}, "timeout"),
        ({"input": {}, "timeout": 0}, "timeout"),
        ({"input": {}, "poll_min_interval": 0}, "poll_min_interval"),
        ({"input": {}, "poll_min_interval": 5, "poll_max_interval": 1}, "poll_max_interval"),
        ({"input": {}, "poll_ratio": -0.1}, "poll_ratio"),
        ({"input": {}, "max_cost": -1}, "max_cost"),
        ({"input": {}, "max_tokens": "many"}, "max_tokens"),
        ({"input": {}, "input_schema": {"type": "nonsense"}}, "not a valid JSON Schema"),
        ({"input": {}, "output_schema": 42}, "output_schema must be a JSON Schema"),
        ({"input": {}, "output_schema": "/nonexistent/schema.json"}, "cannot read schema file"),
        ({"input": {}, "run_async": "yes"}, "run_async must be True or False"),
        ({"input": {}, "deferrable": True, "end_in_triggerer": 1}, "end_in_triggerer must be True or False"),
        ({"input": {}, "user_id": 5}, "user_id"),
        ({"input": {}, "run_async": True, "airflow_webhook": True}, "airflow_webhook=True needs deferrable=True"),
        ({"input": {}, "deferrable": True, "airflow_webhook": "yes"}, "airflow_webhook must be True or False"),
        (
            {
                "input": {},
                "deferrable": True,
                "airflow_webhook": True,
                "webhooks": [{"method": "POST", "url": "https://x.io"}] * 5,
            },
            "airflow_webhook=True adds one",
        ),
        ({"input": {}, "webhook_fallback_interval": 0}, "webhook_fallback_interval"),
        ({"input": {}, "webhook_check_interval": -1}, "webhook_check_interval"),
        ({"input": {}, "duration_aware": None}, "duration_aware must be True or False"),
    ],
)
def test_invalid_arguments_fail_at_construction(alta_emulator, kwargs, message):
    with pytest.raises(AltaValidationError, match=message):
        AltaRunWorkflowOperator(task_id="bad", **kwargs)
    assert alta_emulator.request_count() == 0


def test_schema_from_json_file(tmp_path):
    path = tmp_path / "out.json"
    path.write_text('{"type": "object"}')
    op = AltaRunWorkflowOperator(task_id="ok", input={}, output_schema=str(path))
    assert op.output_schema == str(path)
    path.write_text("{broken")
    with pytest.raises(AltaValidationError, match="not valid JSON"):
        AltaRunWorkflowOperator(task_id="bad", input={}, output_schema=str(path))


def test_is_async_property_not_shadowed():
    op = AltaRunWorkflowOperator(task_id="x", input={}, run_async=True)
    assert op.asynchronous is True
    assert "is_async" not in vars(op)  # Airflow's own async-operator flag (3.3+) stays untouched
    assert getattr(op, "is_async", False) is False
