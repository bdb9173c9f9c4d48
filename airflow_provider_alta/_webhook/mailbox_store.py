"""The receiver's database side: connection secrets, task instances and the XCom mailbox.

Runs in the API server, which owns the metadata database. Every call opens
its own session: the receiver keeps no state between requests beyond a short
cache of secrets, so any number of API server workers can serve it.
"""

from __future__ import annotations

import enum
from typing import Any

from airflow_provider_alta._airflow.internals import get_xcom, get_xcoms
from airflow_provider_alta._airflow.version_compat.xcom import set_xcom
from airflow_provider_alta._core.connection import CONN_TYPE
from airflow_provider_alta._core.finish_plan import XCOM_RUN_ID
from airflow_provider_alta._webhook.contract import MAILBOX_KEY, TaskInstanceRef, WebhookGrant, same_notice, steps_back

#: Task instance states in which a delivery is still useful.
_WAITING_STATES = frozenset({"scheduled", "queued", "running", "deferred", "up_for_retry", "up_for_reschedule"})


class Delivery(str, enum.Enum):
    """What the store did with a notice."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    STALE = "stale"
    TASK_FINISHED = "task_finished"
    UNKNOWN_TASK = "unknown_task"
    OTHER_TRY = "other_try"
    NO_MAILBOX = "no_mailbox"
    OTHER_CONNECTION = "other_connection"
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
        """The ``webhook_secret`` extra of an ``alta`` connection; ``None`` for any other connection, a missing
        one, or one without a secret (a secret on an ``http`` connection, say, signs nothing)."""
        from airflow.exceptions import AirflowNotFoundException
        from airflow.models.connection import Connection

        try:
            conn = Connection.get_connection_from_secrets(conn_id)
        except AirflowNotFoundException:
            return None
        if conn.conn_type != CONN_TYPE:
            return None
        secret = conn.extra_dejson.get("webhook_secret")
        return secret if isinstance(secret, str) and secret else None

    def notices(self, conn_id: str, refs: tuple[TaskInstanceRef, ...]) -> list[tuple[int, dict[str, Any]]]:
        """The delivered notices among ``refs``' mailboxes, as ``(index in refs, notice)``, in one SQL query.

        Only mailboxes opened through ``conn_id`` (the connection the task records when it opens its mailbox)
        and holding a notice count: an empty mailbox, another connection's, or none at all is left out alike.
        """
        from airflow.utils.session import create_session

        keys = [(ref.dag_id, ref.run_id, ref.task_id, ref.map_index) for ref in refs]
        with create_session() as session:
            found = get_xcoms(session, key=MAILBOX_KEY, task_instances=keys)
        answer = []
        for index, key in enumerate(keys):
            mailbox = found.get(key)
            if isinstance(mailbox, dict) and mailbox.get("conn_id") == conn_id and mailbox.get("workflow_run_id"):
                answer.append((index, mailbox))
        return answer

    def deliver(self, grant: WebhookGrant, notice: dict[str, Any]) -> tuple[Delivery, str | None]:
        """Store ``notice`` in the task instance's mailbox unless it is stale, foreign or a duplicate.

        The grant is only honoured for the try it was issued to, and only when the task opened its mailbox
        through the grant's connection: a secret of connection X never opens a task that runs on Y.
        Returns what happened and, for :attr:`Delivery.TASK_FINISHED`, the task's state.
        One transaction; the mailbox row is replaced, never doubled.
        """
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import select

        ref = grant.ref
        with create_session() as session:
            found = session.execute(
                select(TaskInstance.state, TaskInstance.try_number).where(*where_task_instance(TaskInstance, ref))
            ).first()
            if found is None:
                return Delivery.UNKNOWN_TASK, None
            state, try_number = found
            if try_number != grant.try_number:
                return Delivery.OTHER_TRY, None
            if state is not None and str(state) not in _WAITING_STATES:
                return Delivery.TASK_FINISHED, str(state)

            def current(key: str) -> Any:
                return get_xcom(
                    session, key=key, dag_id=ref.dag_id, run_id=ref.run_id, task_id=ref.task_id, map_index=ref.map_index
                )

            mailbox = current(MAILBOX_KEY)
            if not isinstance(mailbox, dict):
                return Delivery.NO_MAILBOX, None
            if mailbox.get("conn_id") != ref.conn_id:
                return Delivery.OTHER_CONNECTION, None
            expected = current(XCOM_RUN_ID)
            if expected is not None and expected != notice["workflow_run_id"]:
                return Delivery.OTHER_RUN, None
            if same_notice(mailbox, notice):
                return Delivery.DUPLICATE, None
            if steps_back(mailbox, notice):
                return Delivery.STALE, None
            set_xcom(
                session,
                key=MAILBOX_KEY,
                value={**notice, "conn_id": ref.conn_id},
                dag_id=ref.dag_id,
                run_id=ref.run_id,
                task_id=ref.task_id,
                map_index=ref.map_index,
            )
        return Delivery.STORED, None
