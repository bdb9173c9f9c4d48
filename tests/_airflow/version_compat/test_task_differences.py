"""What a running task meets differently on each release, told by the release or by a public feature."""

from __future__ import annotations

import datetime
import importlib.util
import json
from types import SimpleNamespace

import airflow
from airflow.sdk import DAG
from packaging.version import Version

from airflow_provider_alta._airflow.version_compat.task import (
    DEFERRED_BY_TRY,
    callback_parse_deactivates_dags,
    earlier_deferring_try,
    note_the_deferring_try,
    openlineage_reports,
    retry_resumes_the_last_deferral,
    task_state_store,
)
from airflow_provider_alta.operators.alta import AltaRunWorkflowOperator

AIRFLOW_3_0 = Version(airflow.__version__).release[:2] == (3, 0)


def test_the_airflow_3_0_dag_processor_flaw_is_detected_where_it_is():
    """3.0's DAG processor counts a callback-only parse as one that found no DAG; 3.1 fixed it."""
    assert callback_parse_deactivates_dags() is AIRFLOW_3_0


def test_a_resume_with_an_earlier_tries_deferral_is_recognised():
    """Airflow 3.0 hands a retry of a deferred task the previous try's deferral (its event, or ``__fail__``)."""
    assert retry_resumes_the_last_deferral() is AIRFLOW_3_0
    second_try = {"ti": SimpleNamespace(try_number=2, task_id="t", map_index=-1, xcom_pull=lambda **_: None)}
    assert earlier_deferring_try(second_try, {"try_number": 1, "event": {}}) == 1
    assert earlier_deferring_try(second_try, {"try_number": 2, "event": {}}) is None
    assert earlier_deferring_try(second_try, None) is None  # no try recorded anywhere: its own resume
    # A failed trigger's ``__fail__`` kwargs (and dag.test()'s event alone) do not say which try deferred: on 3.0,
    # the XCom the deferring try pushed does.
    marked = {"ti": SimpleNamespace(try_number=2, task_id="t", map_index=-1, xcom_pull=lambda **_: 1)}
    failure = {"error": "Trigger failure", "traceback": ["..."]}
    assert earlier_deferring_try(marked, failure) == (1 if AIRFLOW_3_0 else None)
    assert earlier_deferring_try({"ti": SimpleNamespace(**{**vars(marked["ti"]), "try_number": 1})}, failure) is None


def test_the_deferring_try_is_noted_only_where_a_retry_may_be_handed_its_deferral():
    pushed: dict[str, object] = {}
    ti = SimpleNamespace(try_number=3, xcom_push=lambda key, value: pushed.update({key: value}))
    note_the_deferring_try({"ti": ti})
    assert pushed == ({DEFERRED_BY_TRY: 3} if AIRFLOW_3_0 else {})


def test_the_task_state_store_is_the_contexts_own():
    store = object()
    assert task_state_store({"task_state_store": store}) is store
    assert task_state_store({"ti": None}) is None  # a release before 3.3: no such key


# -- OpenLineage: whether its listener reports a task, as each provider release decides -------------------------


def lineage_dag() -> tuple[AltaRunWorkflowOperator, AltaRunWorkflowOperator]:
    with DAG("lineage", schedule=None, start_date=datetime.datetime(2026, 1, 1)):
        reported = AltaRunWorkflowOperator(task_id="reported", input={}, deferrable=True)
        quiet = AltaRunWorkflowOperator(task_id="quiet", input={}, deferrable=True)
    return reported, quiet


def test_openlineage_reports_a_task_once_a_transport_is_configured(openlineage_on):
    reported, _ = lineage_dag()
    assert openlineage_reports(reported) is True
    openlineage_on.setenv("AIRFLOW__OPENLINEAGE__DISABLED", "True")  # the provider's own off switch
    assert openlineage_reports(reported) is True  # decided once per execution, kept on the task
    reported, _ = lineage_dag()
    assert openlineage_reports(reported) is False


def test_openlineage_disabled_for_the_operator(openlineage_on):
    reported, _ = lineage_dag()
    openlineage_on.setenv(
        "AIRFLOW__OPENLINEAGE__DISABLED_FOR_OPERATORS", "airflow_provider_alta.operators.alta.AltaRunWorkflowOperator"
    )
    assert openlineage_reports(reported) is False


def test_openlineage_emission_policy_decides_per_dag_and_task(openlineage_on):
    policy = [
        {"scope": {}, "controls": {"emit": False}},
        {"scope": {"dag_id": "lineage", "task_id": "reported"}, "controls": {"emit": True}},
    ]
    openlineage_on.setenv("AIRFLOW__OPENLINEAGE__EMISSION_POLICY", json.dumps(policy))
    reported, quiet = lineage_dag()
    if importlib.util.find_spec("airflow.providers.openlineage.utils.emission_policy") is not None:
        assert (openlineage_reports(reported), openlineage_reports(quiet)) == (True, False)
    else:  # the provider before 2.19 (Airflow 3.0 to 3.2 resolve it) knows no emission policy: it reports both
        assert (openlineage_reports(reported), openlineage_reports(quiet)) == (True, True)
