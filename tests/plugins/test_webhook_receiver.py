"""The webhook receiver app with FastAPI's test client, against the real metadata database."""

from __future__ import annotations

import json
import logging

import pytest

from airflow_provider_alta._core.finish_plan import XCOM_RUN_ID
from airflow_provider_alta._webhook.contract import (
    MAILBOX_KEY,
    SIGNATURE_HEADER,
    TaskInstanceRef,
    WebhookGrant,
    WebhookSettings,
    sign,
)
from airflow_provider_alta.plugins.api_server import AltaPlugin
from tests.plugins.receiver_support import (
    CONN_ID,
    OUTPUT_SECRET,
    RUN_ID,
    SECRET,
    alta_connection,
    other,
    post,
    run_body,
    set_state,
    set_xcom,
    untouched,
    xcom,
)


def test_good_signature_stores_a_notice(receiver, target):
    set_xcom(target.ref, XCOM_RUN_ID, RUN_ID)
    response = post(receiver, target, run_body())
    assert response.status_code == 200 and response.json()["result"] == "stored"
    notice = xcom(target.ref, MAILBOX_KEY)
    assert notice["workflow_run_id"] == RUN_ID and notice["status"] == "SUCCEED" and notice["conn_id"] == CONN_ID
    assert OUTPUT_SECRET not in json.dumps(notice)  # a notice, not the run's output


def test_notice_accepted_before_the_task_pushed_its_run_id(receiver, target):
    assert post(receiver, target, run_body()).json()["result"] == "stored"
    assert xcom(target.ref, MAILBOX_KEY)["workflow_run_id"] == RUN_ID


@pytest.mark.parametrize(
    "signature",
    [None, "", "sha256=" + "0" * 64, "sha256=deadbeef", "signed-for-another-task", "signed-for-another-try"],
    ids=["missing", "empty", "zeros", "short", "other-task", "other-try"],
)
def test_bad_or_missing_signature_is_401_and_stores_nothing(receiver, target, signature):
    if signature == "signed-for-another-task":
        signature = sign(SECRET, other(target, task_id="another_task"))
    elif signature == "signed-for-another-try":
        signature = sign(SECRET, other(target, try_number=target.try_number + 1))
    response = post(receiver, target, run_body(), signature=signature)
    assert response.status_code == 401
    assert untouched(target)


def test_signature_with_another_secret_is_401(receiver, target):
    response = post(receiver, target, run_body(), signature=sign("another-secret-0123456789", target))
    assert response.status_code == 401 and untouched(target)


def test_connection_without_secret_is_401(receiver, target, monkeypatch):
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", alta_connection(secret=None))
    assert post(receiver, target, run_body()).status_code == 401
    assert post(receiver, other(target, conn_id="no_such_conn"), run_body()).status_code == 401
    assert untouched(target)


def test_unauthenticated_caller_cannot_probe_task_instances(receiver, target):
    assert post(receiver, other(target, task_id="no_such_task"), run_body(), signature=None).status_code == 401


def test_duplicate_delivery_is_idempotent(receiver, target):
    set_xcom(target.ref, XCOM_RUN_ID, RUN_ID)
    assert post(receiver, target, run_body()).json()["result"] == "stored"
    first = xcom(target.ref, MAILBOX_KEY)
    again = post(receiver, target, run_body())
    assert again.status_code == 200 and again.json()["result"] == "duplicate"
    assert xcom(target.ref, MAILBOX_KEY) == first


def test_newer_status_of_the_same_run_replaces_the_notice(receiver, target):
    set_xcom(target.ref, XCOM_RUN_ID, RUN_ID)
    post(receiver, target, run_body(status="RUNNING"))
    assert post(receiver, target, run_body(status="SUCCEED")).json()["result"] == "stored"
    assert xcom(target.ref, MAILBOX_KEY)["status"] == "SUCCEED"


def test_wrong_run_id_is_rejected(receiver, target):
    set_xcom(target.ref, XCOM_RUN_ID, RUN_ID)
    response = post(receiver, target, run_body(run_id="someone-elses-run"))
    assert response.status_code == 409
    assert untouched(target)


def test_unknown_task_instance_is_404(receiver, target):
    assert post(receiver, other(target, task_id="no_such_task"), run_body()).status_code == 404
    assert post(receiver, other(target, map_index=3), run_body()).status_code == 404


def test_task_without_a_mailbox_is_404(receiver, target):
    from airflow.models.xcom import XComModel

    ref = target.ref
    XComModel.clear(dag_id=ref.dag_id, task_id=ref.task_id, run_id=ref.run_id, map_index=-1)
    response = post(receiver, target, run_body())
    assert response.status_code == 404 and response.json()["result"] == "no_mailbox"
    assert xcom(ref, MAILBOX_KEY) is None


def test_finished_task_is_left_alone(receiver, target):
    set_state(target.ref, "success")
    response = post(receiver, target, run_body())
    assert response.status_code == 200 and response.json()["result"] == "task_finished"
    assert untouched(target)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", json.dumps({"status": "SUCCEED"}).encode(), json.dumps(run_body(status="DONE")).encode()],
    ids=["not-json", "list", "no-run-id", "unknown-status"],
)
def test_body_that_is_not_a_run_is_400(receiver, target, body):
    assert post(receiver, target, body).status_code == 400
    assert untouched(target)


def test_oversized_body_is_413(receiver, target):
    huge = json.dumps({**run_body(), "output": "x" * (8 * 1024 * 1024)}).encode()
    assert post(receiver, target, huge).status_code == 413
    assert untouched(target)


def test_logs_name_the_task_and_run_but_no_secret(receiver, target, caplog):
    caplog.set_level(logging.DEBUG)
    post(receiver, target, run_body())
    post(receiver, target, run_body(), signature="sha256=forged")
    text = caplog.text
    assert RUN_ID in text and target.ref.task_id in text
    for secret in (SECRET, sign(SECRET, target), OUTPUT_SECRET):
        assert secret not in text


def test_plugin_mounts_the_receiver_only_when_enabled():
    enabled = WebhookSettings(enabled=True, base_url="https://airflow.example.com")
    disabled = AltaPlugin.fastapi_apps_for(WebhookSettings())
    assert [app["url_prefix"] for app in disabled] == ["/alta-spend"]  # the spend view alone
    apps = AltaPlugin.fastapi_apps_for(enabled)
    assert [app["url_prefix"] for app in apps] == ["/alta", "/alta-spend"]
    # Listed, not built: the first request builds each app (see test_api_server.py).
    assert [app["app"].built for app in apps] == [False, False]


def test_path_round_trips_awkward_run_ids(receiver, target):
    # Airflow run ids carry ':' and '+'; every part of the path is percent-encoded.
    awkward = WebhookGrant(TaskInstanceRef("c", "d", "manual__2026-01-01T00:00:00+00:00", "t"), 1, 2_000_000_000)
    assert "%3A" in awkward.path()
    set_xcom(target.ref, XCOM_RUN_ID, RUN_ID)
    assert post(receiver, target, run_body()).status_code == 200


def test_receiver_webhook_entry_and_its_configuration_errors():
    from airflow_provider_alta._webhook.contract import airflow_webhook, announces_end, signature_matches
    from airflow_provider_alta.exceptions import AltaValidationError

    ref = TaskInstanceRef("alta_default", "etl", "manual__2026-01-01T00:00:00+00:00", "news", 2)
    settings = WebhookSettings(True, "https://airflow.example.com/", token_lifetime=600)
    grant = settings.grant(ref, try_number=3, now=1_800_000_000)
    assert grant.expires_at == 1_800_000_600
    entry = airflow_webhook(settings, SECRET, grant, "alta")
    assert entry["method"] == "POST"
    assert entry["url"] == "https://airflow.example.com/alta" + grant.path()
    assert entry["url"].endswith("/alta_default/etl/manual__2026-01-01T00%3A00%3A00%2B00%3A00/news/2/3/1800000600")
    assert signature_matches(SECRET, grant, entry["headers"][SIGNATURE_HEADER])
    for changed in (other(grant, map_index=3), other(grant, try_number=4), other(grant, expires_at=1_900_000_000)):
        assert not signature_matches(SECRET, changed, sign(SECRET, grant))
    assert not signature_matches(None, grant, sign(SECRET, grant))
    with pytest.raises(AltaValidationError, match="webhook_enabled"):
        airflow_webhook(WebhookSettings(False, "https://airflow.example.com"), SECRET, grant, "alta")
    for base in (None, "", "airflow.example.com", "ftp://airflow.example.com"):
        with pytest.raises(AltaValidationError, match="webhook_base_url"):
            airflow_webhook(WebhookSettings(True, base), SECRET, grant, "alta")
    with pytest.raises(AltaValidationError, match="webhook_secret"):
        airflow_webhook(WebhookSettings(True, "https://airflow.example.com"), None, grant, "alta")
    with pytest.raises(AltaValidationError, match="of type 'alta'"):
        airflow_webhook(WebhookSettings(True, "https://airflow.example.com"), SECRET, grant, "http")
    with pytest.raises(AltaValidationError, match="webhook_token_lifetime"):
        WebhookSettings(True, "https://airflow.example.com", token_lifetime=float("nan")).grant(ref, 1)
    assert announces_end({"workflow_run_id": "r", "status": "FAILED"}, "r")
    assert not announces_end({"workflow_run_id": "r", "status": "RUNNING"}, "r")
    assert not announces_end({"workflow_run_id": "other", "status": "SUCCEED"}, "r")
    assert not announces_end({"workflow_run_id": None, "status": None, "received_at": None}, "r")


def test_token_lifetime_is_read_from_the_alta_section(monkeypatch):
    from airflow_provider_alta._webhook.contract import DEFAULT_TOKEN_LIFETIME

    assert WebhookSettings.from_config().token_lifetime == DEFAULT_TOKEN_LIFETIME
    monkeypatch.setenv("AIRFLOW__ALTA__WEBHOOK_TOKEN_LIFETIME", "90")
    assert WebhookSettings.from_config().token_lifetime == 90
