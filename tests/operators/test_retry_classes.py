"""Which failures Airflow retries: the ones a retry can fix, and no others (dag.test against the emulator)."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import DAGS, SECRET_KEY
from tests.dag_runner import plain

pytestmark = pytest.mark.usefixtures("airflow_db", "alta_conn")


def test_only_what_a_retry_can_fix_is_retried(alta_emulator, monkeypatch, capsys):
    if str(DAGS) not in sys.path:
        sys.path.insert(0, str(DAGS))
    from alta_retry_dags import FAILING_KEY, SLOW_KEY, retry_dag

    alta_emulator.configure(api_key=SECRET_KEY, duration=0.1)
    alta_emulator.configure(api_key=FAILING_KEY, duration=0.1, outcome="fail")
    alta_emulator.configure(api_key=SLOW_KEY, duration=3)
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_WRONG_KEY", alta_emulator.connection_uri("not-the-key"))
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_FAILING", alta_emulator.connection_uri(FAILING_KEY, retry_backoff=0.2))
    # A read timeout shorter than the run: the invoke's outcome is unknown.
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_SLOW", alta_emulator.connection_uri(SLOW_KEY, sync_invoke_timeout=0.3))

    dag_run = retry_dag.test()
    raw = capsys.readouterr().out
    out = plain(raw)
    tries = {ti.task_id: (ti.state, ti.try_number) for ti in dag_run.get_task_instances()}

    assert tries == {
        "rejected_key": ("failed", 1),
        "refused_input": ("failed", 1),
        "broken_contract": ("failed", 1),
        "failed_run": ("failed", 3),  # a FAILED run may pass on a new run: retried
        "unknown_outcome": ("failed", 1),
        "unknown_outcome_retried": ("failed", 3),
    }
    assert alta_emulator.invoke_count(FAILING_KEY) == 3
    assert alta_emulator.invoke_count(SLOW_KEY) == 1 + 3
    assert "AltaAuthFailure" in out and "put a valid key in the connection's API Key field" in out
    assert "AltaInvalidRequestFailure" in out and "fix the input" in out
    assert "AltaContractFailure" in out and "over max_cost=0.1" in out
    assert "AltaOutcomeUnknownFailure" in out and "the run may exist" in out and "retry_on_unknown_outcome" in out
    assert out.count(SECRET_KEY) == out.count("not-the-key") == 0  # counted: a failed "not in" diffs 200 kB slowly
    assert "XCom not found" not in out  # a task that failed before its run has no run link to look up
    # What `make demo` prints when its DAG fails: each task's error line, read from this same kind of log.
    errors = demo_task_errors(raw)
    assert any(e.startswith("AltaAuthFailure: Alta rejected the API key") for e in errors), errors
    assert any(e.startswith("AltaOutcomeUnknownFailure: ") for e in errors), errors
    assert not any(e.startswith("airflow_provider_alta.") for e in errors), errors


def test_a_key_rejected_in_the_triggerer_fails_fast(alta_emulator, capsys):
    if str(DAGS) not in sys.path:
        sys.path.insert(0, str(DAGS))
    from alta_retry_dags import deferred_dag

    alta_emulator.configure(api_key=SECRET_KEY, duration=0.5)
    alta_emulator.inject("query", "status", status=401)  # the invoke passes; the trigger's query is refused

    dag_run = deferred_dag.test()
    out = plain(capsys.readouterr().out)
    (ti,) = dag_run.get_task_instances()

    assert (ti.state, ti.try_number) == ("failed", 1)
    assert alta_emulator.invoke_count() == 1 and alta_emulator.request_count("query") == 1
    assert "AltaAuthFailure" in out and "put a valid key in the connection's API Key field" in out
    assert SECRET_KEY not in out


def test_a_404_while_deferred_is_retried_and_the_retry_reattaches(alta_emulator, capsys):
    """The trigger's query answers 404 (retryable): try 2 starts afresh at ``execute`` and reattaches to the run,
    on every release (Airflow 3.0 hands try 2 the event of try 1)."""
    if str(DAGS) not in sys.path:
        sys.path.insert(0, str(DAGS))
    from alta_retry_dags import deferred_not_found_dag

    alta_emulator.configure(api_key=SECRET_KEY, duration=15.0, time_scale=0.02, queries_not_found=1)

    dag_run = deferred_not_found_dag.test()
    out = plain(capsys.readouterr().out)
    (ti,) = dag_run.get_task_instances()

    assert (ti.state, ti.try_number) == ("success", 2), out[-3000:]
    assert alta_emulator.invoke_count() == 1  # no second paid run
    run_id = ti.xcom_pull(task_ids=ti.task_id, key="workflow_run_id")
    assert ti.xcom_pull(task_ids=ti.task_id) == alta_emulator.run(run_id)["body"]["output"]
    assert "AltaNotFoundError" in out and "Reattaching to Alta todayNews 1.0.1 run" in out
    assert SECRET_KEY not in out


def test_a_404_while_the_sensor_is_deferred_is_retried_and_the_retry_looks_again(alta_emulator, capsys):
    """The sensor's trigger is answered 404: try 2 starts afresh at ``execute`` on every release (Airflow 3.0
    hands try 2 the event of try 1, which would fail it again)."""
    if str(DAGS) not in sys.path:
        sys.path.insert(0, str(DAGS))
    from alta_retry_dags import sensor_not_found_dag

    alta_emulator.configure(api_key=SECRET_KEY, duration=15.0, time_scale=0.2)  # going on when the sensor looks
    alta_emulator.inject("query", "status", status=404, after=1)  # the sensor's own first look is answered

    dag_run = sensor_not_found_dag.test()
    out = plain(capsys.readouterr().out)
    tries = {ti.task_id: (ti.state, ti.try_number) for ti in dag_run.get_task_instances()}

    assert tries == {"start": ("success", 1), "wait": ("success", 2)}, out[-3000:]
    assert alta_emulator.invoke_count() == 1
    wait = next(ti for ti in dag_run.get_task_instances() if ti.task_id == "wait")
    run_id = wait.xcom_pull(task_ids="start")
    assert wait.xcom_pull(task_ids="wait") == alta_emulator.run(run_id)["body"]["output"]
    assert "AltaNotFoundError" in out


def demo_task_errors(log: str) -> list[str]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("demo", DAGS.parent.parent / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    errors: list[str] = demo.task_errors(log)
    return errors
