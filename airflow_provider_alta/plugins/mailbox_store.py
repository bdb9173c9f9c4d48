"""The receiver's database side: connection secrets, task instances and the XCom mailbox.

Runs in the API server, which owns the metadata database. Every call opens
its own session: the receiver keeps no state between requests, so any number
of API server workers can serve it.
"""

from __future__ import annotations

import enum
from typing import Any

from airflow_provider_alta.compat import get_xcom, set_xcom
from airflow_provider_alta.completion import XCOM_RUN_ID
from airflow_provider_alta.webhook import MAILBOX_KEY, TaskInstanceRef, same_notice

#: Task instance states in which a delivery is still useful.
_WAITING_STATES = frozenset({"scheduled", "queued", "running", "deferred", "up_for_retry", "up_for_reschedule"})


class Delivery(str, enum.Enum):
    """What the store did with a notice."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    TASK_FINISHED = "task_finished"
    UNKNOWN_TASK = "unknown_task"
    OTHER_RUN = "other_run"


def where_task_instance(model: Any, ref: TaskInstanceRef) -> list[Any]:
    """The SQL conditions selecting ``ref``'s rows of ``model`` (task instances, XComs)."""
    return [
        model.dag_id == ref.dag_id,
        model.run_id == ref.run_id,
        model.task_id == ref.task_id,
        model.map_index == ref.map_index,
    ]


class MailboxStore:
    """Reads and writes the metadata database for the receiver."""

    def webhook_secret(self, conn_id: str) -> str | None:
        """The connection's ``webhook_secret`` extra; ``None`` when it or the connection is missing."""
        from airflow.exceptions import AirflowNotFoundException
        from airflow.models.connection import Connection

        try:
            conn = Connection.get_connection_from_secrets(conn_id)
        except AirflowNotFoundException:
            return None
        secret = conn.extra_dejson.get("webhook_secret")
        return secret if isinstance(secret, str) and secret else None

    def deliver(self, ref: TaskInstanceRef, notice: dict[str, Any]) -> tuple[Delivery, str | None]:
        """Store ``notice`` in the task instance's mailbox unless it is stale, foreign or a duplicate.

        Returns what happened and, for :attr:`Delivery.TASK_FINISHED`, the task's state.
        One transaction; the mailbox row is replaced, never doubled.
        """
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            found = session.execute(select(TaskInstance.state).where(*where_task_instance(TaskInstance, ref))).first()
            if found is None:
                return Delivery.UNKNOWN_TASK, None
            state = found[0]
            if state is not None and str(state) not in _WAITING_STATES:
                return Delivery.TASK_FINISHED, str(state)

            def current(key: str) -> Any:
                return get_xcom(
                    session, key=key, dag_id=ref.dag_id, run_id=ref.run_id, task_id=ref.task_id, map_index=ref.map_index
                )

            expected = current(XCOM_RUN_ID)
            if expected is not None and expected != notice["workflow_run_id"]:
                return Delivery.OTHER_RUN, None
            if same_notice(current(MAILBOX_KEY), notice):
                return Delivery.DUPLICATE, None
            set_xcom(
                session,
                key=MAILBOX_KEY,
                value=notice,
                dag_id=ref.dag_id,
                run_id=ref.run_id,
                task_id=ref.task_id,
                map_index=ref.map_index,
            )
        return Delivery.STORED, None
