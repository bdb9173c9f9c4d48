"""What the batched mailbox tests share: six task instances, their mailboxes in known states, signed reads."""

from __future__ import annotations

import json
import time
from typing import Any

from airflow_provider_alta._webhook.contract import MAILBOX_KEY, SIGNATURE_HEADER, TaskInstanceRef, empty_mailbox
from airflow_provider_alta._webhook.mailbox_protocol import MAILBOXES_ROUTE, batch_body, sign_body
from tests.dag_runner import run_dag
from tests.plugins.receiver_support import CONN_ID, SECRET, alta_connection, set_xcom

#: A second ``alta`` connection with a webhook secret of its own.
OTHER_CONN_ID = "alta_other_mailboxes"
OTHER_SECRET = "whs-other-SECRET-e3d09b51"


def mailbox_refs() -> list[TaskInstanceRef]:
    """The six mapped task instances of ``t_mailbox_targets`` (a new DAG run), seen through :data:`CONN_ID`."""
    result = run_dag("t_mailbox_targets")
    tis = sorted((ti for ti in result.tasks.values()), key=lambda ti: ti.map_index)
    assert len(tis) == 6
    return [TaskInstanceRef(CONN_ID, ti.dag_id, ti.run_id, ti.task_id, ti.map_index) for ti in tis]


def notice(run_id: str, status: str, conn_id: str = CONN_ID) -> dict[str, Any]:
    return {"workflow_run_id": run_id, "status": status, "received_at": 1_700_000_000.0, "conn_id": conn_id}


def fill_mailboxes(refs: list[TaskInstanceRef]) -> dict[int, dict[str, Any]]:
    """Known mailboxes: 0, 4, 5 hold notices of :data:`CONN_ID`; 1 is empty; 2 is another connection's; 3 has
    none. Returns the notices :data:`CONN_ID` may read, by index."""
    from airflow.models.xcom import XComModel

    for ref in refs:
        XComModel.clear(dag_id=ref.dag_id, task_id=ref.task_id, run_id=ref.run_id, map_index=ref.map_index)
    readable = {0: notice("run-a", "SUCCEED"), 4: notice("run-e", "RUNNING"), 5: notice("run-f", "FAILED")}
    for index, value in readable.items():
        set_xcom(refs[index], MAILBOX_KEY, value)
    set_xcom(refs[1], MAILBOX_KEY, empty_mailbox(CONN_ID))
    set_xcom(refs[2], MAILBOX_KEY, notice("run-c", "SUCCEED", conn_id=OTHER_CONN_ID))
    return readable


def connections_env() -> dict[str, str]:
    return {
        f"AIRFLOW_CONN_{CONN_ID.upper()}": alta_connection(SECRET),
        f"AIRFLOW_CONN_{OTHER_CONN_ID.upper()}": alta_connection(OTHER_SECRET),
    }


def post_batch(
    client: Any,
    conn_id: str,
    refs: list[TaskInstanceRef],
    secret: str | None = SECRET,
    *,
    issued_at: float | None = None,
    body: bytes | None = None,
) -> Any:
    """A batched read as a triggerer sends it, signed with ``secret`` (unsigned when ``None``)."""
    raw = body if body is not None else batch_body(conn_id, refs, issued_at if issued_at is not None else time.time())
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SIGNATURE_HEADER] = sign_body(secret, raw)
    return client.post(MAILBOXES_ROUTE, content=raw, headers=headers)


def raw_batch(conn_id: Any, refs: Any, issued_at: Any = None) -> bytes:
    return json.dumps(
        {"conn_id": conn_id, "issued_at": time.time() if issued_at is None else issued_at, "refs": refs}
    ).encode()
