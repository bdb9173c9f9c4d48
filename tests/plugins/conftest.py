"""Fixtures of the receiver tests: a deferred task instance with an open mailbox, the app, and the app served."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from airflow_provider_alta._webhook.contract import (
    MAILBOX_KEY,
    URL_PREFIX,
    TaskInstanceRef,
    WebhookGrant,
    empty_mailbox,
)
from airflow_provider_alta._webhook.receiver import create_app
from tests.dag_runner import run_dag
from tests.plugins.receiver_support import CONN_ID, alta_connection, grant_for, serve, set_state, set_xcom, task_try


@pytest.fixture(scope="session")
def target_ref(airflow_db) -> TaskInstanceRef:
    ti = run_dag("t_receiver_target").ti("waiting")
    return TaskInstanceRef(conn_id=CONN_ID, dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id)


@pytest.fixture
def target(target_ref) -> WebhookGrant:
    """A grant for the target's current try, the target deferred, its mailbox opened by its connection."""
    from airflow.models.xcom import XComModel

    set_state(target_ref, "deferred")
    XComModel.clear(dag_id=target_ref.dag_id, task_id=target_ref.task_id, run_id=target_ref.run_id, map_index=-1)
    set_xcom(target_ref, MAILBOX_KEY, empty_mailbox(CONN_ID))
    return grant_for(target_ref, task_try(target_ref))


@pytest.fixture
def receiver(target, monkeypatch) -> TestClient:
    """The app, the target's connection an ``alta`` one with a webhook secret."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", alta_connection())
    return TestClient(create_app())


@pytest.fixture(scope="module")
def receiver_url(airflow_db) -> Iterator[str]:
    """The receiver app mounted under /alta, served by uvicorn on 127.0.0.1 as Airflow's API server would."""
    from fastapi import FastAPI

    app = FastAPI()
    app.mount(URL_PREFIX, create_app())
    with serve(app) as url:
        yield url
