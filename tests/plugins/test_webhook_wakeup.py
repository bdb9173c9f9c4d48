"""Webhook wake-up end to end in one process: emulator → receiver (uvicorn on 127.0.0.1) → XCom → trigger."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from airflow_provider_alta._core.finish_plan import XCOM_RECENT_DURATIONS, XCOM_RUN_ID
from airflow_provider_alta._webhook.contract import (
    MAILBOX_KEY,
    SIGNATURE_HEADER,
    URL_PREFIX,
    TaskInstanceRef,
    empty_mailbox,
    sign,
)
from tests.conftest import SECRET_KEY
from tests.dag_runner import plain, run_dag
from tests.plugins.receiver_support import grant_for, task_try

WEBHOOK_SECRET = "whs-wakeup-SECRET-71c2e9aa"


@pytest.fixture
def webhooks(alta_conn, alta_emulator, receiver_url, monkeypatch) -> Any:
    monkeypatch.setenv("AIRFLOW__ALTA__WEBHOOK_ENABLED", "True")
    monkeypatch.setenv("AIRFLOW__ALTA__WEBHOOK_BASE_URL", receiver_url)
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTA_DEFAULT",
        alta_emulator.connection_uri(SECRET_KEY, retry_backoff=0.2, retry_max_wait=20, webhook_secret=WEBHOOK_SECRET),
    )
    return alta_emulator


def only_run(emulator: Any) -> dict[str, Any]:
    (entry,) = [e for e in emulator.stats()["request_log"] if e["endpoint"] == "invoke"]
    deliveries = emulator.stats()["webhook_deliveries"]
    run_id = deliveries[0]["workflowRunId"] if deliveries else None
    return {"invoke": entry, "deliveries": deliveries, "run_id": run_id}


def test_webhook_wakes_the_trigger_with_one_confirming_query(webhooks):
    webhooks.configure(duration=3.0)
    result = run_dag("t_webhook")
    assert result.state == "success"
    assert result.xcom("run")["news"]
    deliveries = webhooks.stats()["webhook_deliveries"]
    assert [d["status"] for d in deliveries] == [200]
    assert "/alta/webhook/v2/alta_default/t_webhook/" in deliveries[0]["url"]
    assert webhooks.invoke_count() == 1
    assert webhooks.request_count("query") == 1  # the confirmation; the fallback never fired
    run_id = result.xcom("run", XCOM_RUN_ID)
    assert result.xcom("run", MAILBOX_KEY)["workflow_run_id"] == run_id
    # Noticed well before the 60 s fallback query could have gone out.
    ended = webhooks.run(run_id)["ends_at"]
    assert result.ti("run").end_date.timestamp() - ended < 30


def test_lost_webhook_falls_back_to_polling(webhooks):
    webhooks.configure(duration=2.0, webhook_copies=0)
    result = run_dag("t_webhook_fallback")
    assert result.state == "success" and result.xcom("run")["news"]
    assert webhooks.stats()["webhook_deliveries"] == []
    assert webhooks.request_count("query") >= 1
    assert result.xcom("run", MAILBOX_KEY) == empty_mailbox("alta_default")


def test_duplicated_webhook_is_harmless(webhooks):
    webhooks.configure(duration=2.0, webhook_copies=2)
    result = run_dag("t_webhook")
    assert result.state == "success"
    assert [d["status"] for d in webhooks.stats()["webhook_deliveries"]] == [200, 200]
    assert webhooks.invoke_count() == 1
    assert webhooks.request_count("query") <= 2


def test_webhook_before_the_deferral_is_seen(webhooks):
    # The run ends, and its webhook lands, while the invoke's answer is still on its way.
    webhooks.configure(duration=0.2)
    webhooks.inject("invoke", "delay_after", delay=2.0)
    result = run_dag("t_webhook")
    assert result.state == "success" and result.xcom("run")["news"]
    (delivery,) = webhooks.stats()["webhook_deliveries"]
    assert delivery["status"] == 200
    assert delivery["at"] < webhooks.stats()["request_log"][0]["at"] + 2.0
    assert webhooks.request_count("query") == 1


def _running_task(dag_id: str, timeout: float = 60) -> tuple[TaskInstanceRef, str]:
    """The running DAG run's task ``run`` and the Alta run id it pushed, once it has."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    deadline = time.time() + timeout
    while time.time() < deadline:
        with create_session() as session:
            row = session.execute(
                select(DagRun.run_id, XComModel.value)
                .join(XComModel, XComModel.dag_run_id == DagRun.id)
                .where(DagRun.dag_id == dag_id, DagRun.state == "running", XComModel.key == XCOM_RUN_ID)
            ).first()
        if row is not None:
            return TaskInstanceRef("alta_default", dag_id, row[0], "run"), str(row[1])
        time.sleep(0.1)
    raise TimeoutError("the task never pushed its run id")


def test_forged_and_replayed_notices_do_not_finish_the_task(webhooks, receiver_url):
    webhooks.configure(duration=5.0)
    answers: dict[str, int] = {}

    def attack() -> None:
        ref, run_id = _running_task("t_webhook_fallback")
        grant = grant_for(ref, task_try(ref))
        claim = json.dumps({"workflowRunId": run_id, "status": "SUCCEED", "output": {"news": []}}).encode()
        for name, header in (("forged", "sha256=" + "ab" * 32), ("replayed", sign(WEBHOOK_SECRET, grant))):
            request = urllib.request.Request(
                receiver_url + URL_PREFIX + grant.path(), data=claim, method="POST", headers={SIGNATURE_HEADER: header}
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    answers[name] = response.status
            except urllib.error.HTTPError as err:
                answers[name] = err.code

    attacker = threading.Thread(target=attack, daemon=True)
    attacker.start()
    result = run_dag("t_webhook_fallback")
    attacker.join(30)
    assert answers == {"forged": 401, "replayed": 200}
    assert result.state == "success"
    run_id = result.xcom("run", XCOM_RUN_ID)
    # The real output, taken only after Alta itself reported the end.
    assert result.xcom("run")["news"]
    assert result.ti("run").end_date.timestamp() >= webhooks.run(run_id)["ends_at"]


def test_duration_aware_first_query_near_the_expected_end(airflow_db, alta_conn, alta_emulator):
    alta_emulator.configure(duration=3.0)
    first = run_dag("t_duration_aware")
    assert first.state == "success"
    learned = first.xcom("run", XCOM_RECENT_DURATIONS)
    assert learned[-1] == 3000
    polls_first = alta_emulator.request_count("query")
    alta_emulator.reset()
    alta_emulator.configure(api_key=SECRET_KEY, duration=3.0)
    second = run_dag("t_duration_aware")
    assert second.state == "success"
    assert second.xcom("run", XCOM_RECENT_DURATIONS)[-2:] == [3000, 3000]
    assert alta_emulator.request_count("query") <= 2 < polls_first


def test_webhook_without_the_receiver_configured_fails_before_any_request(airflow_db, alta_conn, alta_emulator, capsys):
    result = run_dag("t_webhook")
    assert result.state == "failed"
    out = plain(capsys.readouterr().out)
    assert "AltaValidationError" in out and "webhook_enabled" in out
    assert alta_emulator.request_count() == 0


def test_webhook_without_a_secret_fails_before_any_request(alta_conn, alta_emulator, receiver_url, capsys, monkeypatch):
    monkeypatch.setenv("AIRFLOW__ALTA__WEBHOOK_ENABLED", "True")
    monkeypatch.setenv("AIRFLOW__ALTA__WEBHOOK_BASE_URL", receiver_url)
    result = run_dag("t_webhook")
    assert result.state == "failed"
    assert "needs a 'webhook_secret' extra" in plain(capsys.readouterr().out)
    assert alta_emulator.request_count() == 0


async def test_unreadable_mailbox_leaves_polling_in_charge(airflow_db, alta_conn, alta_emulator, capsys):
    """A mailbox that cannot be read (here: a map index the database cannot hold): logged three times, then
    quiet, and polling finishes the run."""
    from airflow_provider_alta.hooks.alta import AltaHook
    from airflow_provider_alta.triggers.alta import AltaWorkflowRunTrigger

    alta_emulator.configure(duration=6.0)  # outlasts the first database access of the test process
    run_id = AltaHook().invoke_workflow({"topic": "AI"}, is_async=True).workflow_run_id
    mailbox = TaskInstanceRef("alta_default", "d", "r", "t", 2**70).to_dict()
    trigger = AltaWorkflowRunTrigger(
        run_id, polling={"min_interval": 0.2, "max_interval": 0.5}, mailbox=mailbox, mailbox_interval=0.1
    )
    (event,) = [e.payload async for e in trigger.run()]
    assert event["status"] == "success"
    out = plain(capsys.readouterr().out)
    assert out.count("Could not read the webhook mailbox of d/r/t") == 3  # said, then quiet
