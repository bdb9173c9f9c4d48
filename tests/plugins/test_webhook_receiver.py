"""The webhook receiver app with FastAPI's test client, against the real metadata database."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from airflow_provider_alta.compat import set_xcom as store_xcom
from airflow_provider_alta.completion import XCOM_RUN_ID
from airflow_provider_alta.plugins.mailbox_store import where_task_instance
from airflow_provider_alta.plugins.webhook_receiver import AltaWebhookPlugin, create_app
from airflow_provider_alta.webhook import (
    MAILBOX_KEY,
    SIGNATURE_HEADER,
    TaskInstanceRef,
    WebhookSettings,
    sign,
)
from tests.dag_runner import run_dag

SECRET = "whs-receiver-SECRET-4be1c07d"
OUTPUT_SECRET = "output-SECRET-9a1f"
RUN_ID = "run-0001"


def run_body(run_id: str = RUN_ID, status: str = "SUCCEED") -> dict[str, Any]:
    return {
        "workflowId": "wf",
        "workflowName": "todayNews",
        "workflowVersion": "1",
        "workflowRunId": run_id,
        "status": status,
        "output": {"token": OUTPUT_SECRET},
    }


@pytest.fixture(scope="module")
def target(airflow_db) -> TaskInstanceRef:
    ti = run_dag("t_receiver_target").ti("waiting")
    return TaskInstanceRef(conn_id="alta_hooks", dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id)


def set_state(ref: TaskInstanceRef, state: str) -> None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(update(TaskInstance).where(*where_task_instance(TaskInstance, ref)).values(state=state))


def xcom(ref: TaskInstanceRef, key: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.execute(
            select(XComModel).where(XComModel.key == key, *where_task_instance(XComModel, ref))
        ).scalar()
        return None if row is None else XComModel.deserialize_value(row)


def set_xcom(ref: TaskInstanceRef, key: str, value: Any) -> None:
    from airflow.utils.session import create_session

    # As a task's push through the Execution API stores it: plain JSON.
    with create_session() as session:
        store_xcom(
            session,
            key=key,
            value=value,
            dag_id=ref.dag_id,
            run_id=ref.run_id,
            task_id=ref.task_id,
            map_index=ref.map_index,
        )


@pytest.fixture
def receiver(target, monkeypatch) -> TestClient:
    """A deferred task instance with no mailbox yet, a connection with a secret, and the app."""
    from airflow.models.xcom import XComModel

    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTA_HOOKS",
        json.dumps({"conn_type": "alta", "host": "http://127.0.0.1:9", "extra": {"webhook_secret": SECRET}}),
    )
    set_state(target, "deferred")
    XComModel.clear(dag_id=target.dag_id, task_id=target.task_id, run_id=target.run_id, map_index=-1)
    return TestClient(create_app())


def post(client: TestClient, ref: TaskInstanceRef, body: Any, signature: str | None = "good") -> Any:
    headers = {}
    if signature == "good":
        headers[SIGNATURE_HEADER] = sign(SECRET, ref)
    elif signature is not None:
        headers[SIGNATURE_HEADER] = signature
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(ref.path(), content=content, headers=headers)


def test_good_signature_stores_a_notice(receiver, target):
    set_xcom(target, XCOM_RUN_ID, RUN_ID)
    response = post(receiver, target, run_body())
    assert response.status_code == 200 and response.json()["result"] == "stored"
    notice = xcom(target, MAILBOX_KEY)
    assert notice["workflow_run_id"] == RUN_ID and notice["status"] == "SUCCEED"
    assert OUTPUT_SECRET not in json.dumps(notice)  # a notice, not the run's output


def test_notice_accepted_before_the_task_pushed_its_run_id(receiver, target):
    assert post(receiver, target, run_body()).json()["result"] == "stored"
    assert xcom(target, MAILBOX_KEY)["workflow_run_id"] == RUN_ID


@pytest.mark.parametrize(
    "signature",
    [None, "", "sha256=" + "0" * 64, "sha256=deadbeef", "signed-for-another-task"],
    ids=["missing", "empty", "zeros", "short", "other-task"],
)
def test_bad_or_missing_signature_is_401_and_stores_nothing(receiver, target, signature):
    if signature == "signed-for-another-task":
        other = TaskInstanceRef(target.conn_id, target.dag_id, target.run_id, "another_task")
        signature = sign(SECRET, other)
    response = post(receiver, target, run_body(), signature=signature)
    assert response.status_code == 401
    assert xcom(target, MAILBOX_KEY) is None


def test_signature_with_another_secret_is_401(receiver, target):
    response = post(receiver, target, run_body(), signature=sign("another-secret-0123456789", target))
    assert response.status_code == 401 and xcom(target, MAILBOX_KEY) is None


def test_connection_without_secret_is_401(receiver, target, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_HOOKS", json.dumps({"conn_type": "alta", "host": "http://127.0.0.1:9"}))
    assert post(receiver, target, run_body()).status_code == 401
    missing = TaskInstanceRef("no_such_conn", target.dag_id, target.run_id, target.task_id)
    assert post(receiver, missing, run_body()).status_code == 401
    assert xcom(target, MAILBOX_KEY) is None


def test_unauthenticated_caller_cannot_probe_task_instances(receiver, target):
    unknown = TaskInstanceRef(target.conn_id, target.dag_id, target.run_id, "no_such_task")
    assert post(receiver, unknown, run_body(), signature=None).status_code == 401


def test_duplicate_delivery_is_idempotent(receiver, target):
    set_xcom(target, XCOM_RUN_ID, RUN_ID)
    assert post(receiver, target, run_body()).json()["result"] == "stored"
    first = xcom(target, MAILBOX_KEY)
    again = post(receiver, target, run_body())
    assert again.status_code == 200 and again.json()["result"] == "duplicate"
    assert xcom(target, MAILBOX_KEY) == first


def test_newer_status_of_the_same_run_replaces_the_notice(receiver, target):
    set_xcom(target, XCOM_RUN_ID, RUN_ID)
    post(receiver, target, run_body(status="RUNNING"))
    assert post(receiver, target, run_body(status="SUCCEED")).json()["result"] == "stored"
    assert xcom(target, MAILBOX_KEY)["status"] == "SUCCEED"


def test_wrong_run_id_is_rejected(receiver, target):
    set_xcom(target, XCOM_RUN_ID, RUN_ID)
    response = post(receiver, target, run_body(run_id="someone-elses-run"))
    assert response.status_code == 409
    assert xcom(target, MAILBOX_KEY) is None


def test_unknown_task_instance_is_404(receiver, target):
    unknown = TaskInstanceRef(target.conn_id, target.dag_id, target.run_id, "no_such_task")
    assert post(receiver, unknown, run_body()).status_code == 404
    other_index = TaskInstanceRef(target.conn_id, target.dag_id, target.run_id, target.task_id, map_index=3)
    assert post(receiver, other_index, run_body()).status_code == 404


def test_finished_task_is_left_alone(receiver, target):
    set_state(target, "success")
    response = post(receiver, target, run_body())
    assert response.status_code == 200 and response.json()["result"] == "task_finished"
    assert xcom(target, MAILBOX_KEY) is None


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", json.dumps({"status": "SUCCEED"}).encode(), json.dumps(run_body(status="DONE")).encode()],
    ids=["not-json", "list", "no-run-id", "unknown-status"],
)
def test_body_that_is_not_a_run_is_400(receiver, target, body):
    assert post(receiver, target, body).status_code == 400
    assert xcom(target, MAILBOX_KEY) is None


def test_oversized_body_is_413(receiver, target):
    huge = json.dumps({**run_body(), "output": "x" * (8 * 1024 * 1024)}).encode()
    assert post(receiver, target, huge).status_code == 413
    assert xcom(target, MAILBOX_KEY) is None


def test_logs_name_the_task_and_run_but_no_secret(receiver, target, caplog):
    caplog.set_level(logging.DEBUG)
    post(receiver, target, run_body())
    post(receiver, target, run_body(), signature="sha256=forged")
    text = caplog.text
    assert RUN_ID in text and target.task_id in text
    for secret in (SECRET, sign(SECRET, target), OUTPUT_SECRET):
        assert secret not in text


def test_plugin_mounts_the_app_only_in_an_enabled_api_server():
    enabled = WebhookSettings(enabled=True, base_url="https://airflow.example.com")
    assert AltaWebhookPlugin.fastapi_apps_for(WebhookSettings(), in_api_server=True) == []
    assert AltaWebhookPlugin.fastapi_apps_for(enabled, in_api_server=False) == []
    (app,) = AltaWebhookPlugin.fastapi_apps_for(enabled, in_api_server=True)
    assert app["url_prefix"] == "/alta" and app["app"] is not None


def test_path_round_trips_awkward_run_ids(receiver, target, monkeypatch):
    # Airflow run ids carry ':' and '+'; every part of the path is percent-encoded.
    assert "%3A" in TaskInstanceRef("c", "d", "manual__2026-01-01T00:00:00+00:00", "t").path()
    set_xcom(target, XCOM_RUN_ID, RUN_ID)
    assert post(receiver, target, run_body()).status_code == 200


def test_receiver_webhook_entry_and_its_configuration_errors():
    from airflow_provider_alta.exceptions import AltaValidationError
    from airflow_provider_alta.webhook import airflow_webhook, announces_end, signature_matches

    ref = TaskInstanceRef("alta_default", "etl", "manual__2026-01-01T00:00:00+00:00", "news", 2)
    entry = airflow_webhook(WebhookSettings(True, "https://airflow.example.com/"), SECRET, ref)
    assert entry["method"] == "POST"
    assert entry["url"] == "https://airflow.example.com/alta" + ref.path()
    assert entry["url"].endswith("/alta_default/etl/manual__2026-01-01T00%3A00%3A00%2B00%3A00/news/2")
    assert signature_matches(SECRET, ref, entry["headers"][SIGNATURE_HEADER])
    assert not signature_matches(SECRET, TaskInstanceRef(**{**ref.to_dict(), "map_index": 3}), sign(SECRET, ref))
    with pytest.raises(AltaValidationError, match="webhook_enabled"):
        airflow_webhook(WebhookSettings(False, "https://airflow.example.com"), SECRET, ref)
    for base in (None, "", "airflow.example.com", "ftp://airflow.example.com"):
        with pytest.raises(AltaValidationError, match="webhook_base_url"):
            airflow_webhook(WebhookSettings(True, base), SECRET, ref)
    with pytest.raises(AltaValidationError, match="webhook_secret"):
        airflow_webhook(WebhookSettings(True, "https://airflow.example.com"), None, ref)
    assert announces_end({"workflow_run_id": "r", "status": "FAILED"}, "r")
    assert not announces_end({"workflow_run_id": "r", "status": "RUNNING"}, "r")
    assert not announces_end({"workflow_run_id": "other", "status": "SUCCEED"}, "r")
    assert not announces_end({"workflow_run_id": None, "status": None, "received_at": None}, "r")
