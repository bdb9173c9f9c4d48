"""What the receiver tests share: a target task instance, requests to the app, reads of its mailbox."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from airflow_provider_alta._airflow.version_compat.xcom import set_xcom as store_xcom
from airflow_provider_alta._webhook.contract import (
    MAILBOX_KEY,
    SIGNATURE_HEADER,
    TaskInstanceRef,
    WebhookGrant,
    empty_mailbox,
    sign,
)
from airflow_provider_alta._webhook.mailbox_store import where_task_instance

SECRET = "whs-receiver-SECRET-4be1c07d"
OUTPUT_SECRET = "output-SECRET-9a1f"
RUN_ID = "run-0001"
#: The connection the target task runs on (an ``alta`` connection with :data:`SECRET`).
CONN_ID = "alta_hooks"


def run_body(run_id: str = RUN_ID, status: str = "SUCCEED") -> dict[str, Any]:
    return {
        "workflowId": "wf",
        "workflowName": "todayNews",
        "workflowVersion": "1",
        "workflowRunId": run_id,
        "status": status,
        "output": {"token": OUTPUT_SECRET},
    }


def alta_connection(secret: str | None = SECRET, conn_type: str = "alta") -> str:
    extra = {"webhook_secret": secret} if secret else {}
    return json.dumps({"conn_type": conn_type, "host": "http://127.0.0.1:9", "extra": extra})


def grant_for(ref: TaskInstanceRef, try_number: int = 1, lifetime: float = 3600) -> WebhookGrant:
    return WebhookGrant(ref, try_number, int(time.time() + lifetime))


def other(grant: WebhookGrant, **changes: Any) -> WebhookGrant:
    """``grant`` with some fields of its task instance, its try or its expiry changed."""
    own = {k: changes.pop(k) for k in ("try_number", "expires_at") if k in changes}
    ref = TaskInstanceRef(**{**grant.ref.to_dict(), **changes})
    return WebhookGrant(ref, own.get("try_number", grant.try_number), own.get("expires_at", grant.expires_at))


def task_try(ref: TaskInstanceRef) -> int:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return int(session.scalar(select(TaskInstance.try_number).where(*where_task_instance(TaskInstance, ref))))


def set_state(ref: TaskInstanceRef, state: str, **values: Any) -> None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(
            update(TaskInstance).where(*where_task_instance(TaskInstance, ref)).values(state=state, **values)
        )


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


def untouched(grant: WebhookGrant) -> bool:
    """Whether the mailbox still holds only what the task put there before invoking."""
    return bool(xcom(grant.ref, MAILBOX_KEY) == empty_mailbox(grant.ref.conn_id))


def post(client: Any, grant: WebhookGrant, body: Any, signature: str | None = "good", secret: str = SECRET) -> Any:
    headers = {}
    if signature == "good":
        headers[SIGNATURE_HEADER] = sign(secret, grant)
    elif signature is not None:
        headers[SIGNATURE_HEADER] = signature
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(grant.path(), content=content, headers=headers)


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on 127.0.0.1 in a thread, as Airflow's API server serves plugin apps."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        assert time.time() < deadline, "the receiver did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def use_receiver(monkeypatch: Any, url: str, emulator: Any, webhook_secret: str, **connection: Any) -> None:
    """The receiver set up at ``url`` and the API server found there; ``alta_default`` on ``emulator``, holding
    ``webhook_secret``."""
    from tests.conftest import SECRET_KEY

    monkeypatch.setenv("AIRFLOW__ALTA__WEBHOOK_ENABLED", "True")
    monkeypatch.setenv("AIRFLOW__ALTA__WEBHOOK_BASE_URL", url)
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"{url}/execution/")
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTA_DEFAULT",
        emulator.connection_uri(SECRET_KEY, retry_max_wait=20, webhook_secret=webhook_secret, **connection),
    )
