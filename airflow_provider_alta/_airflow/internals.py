"""The provider's uses of Airflow internals that are the same on every supported release (3.0 to 3.3).

Airflow's public interface (the Task SDK's ``airflow.sdk``) offers no way to do these, so each leans on a
private API, named in its function's docstring and in ``docs/architecture.md``'s list of the internals the
provider relies on; the version matrix runs every suite that uses one on every supported release. Where a
release's own way leans on an internal (an older release's, mostly), that way is a difference between releases:
it is in :mod:`airflow_provider_alta._airflow.version_compat`, with the internal named there.

* the task's and the trigger's channel to their supervisor (``task_runner.SUPERVISOR_COMMS`` and the
  ``execution_time.comms`` messages): knowing a triggerer, and deleting a Variable from a trigger;
* the Task SDK's Variable setter and deleter (``execution_time.context``), which raise where ``Variable.set``
  only logs;
* the metadata database's XCom rows (``XComModel``, ``create_session``), where the API server or
  ``dag.test()`` reads and writes them.

Everything is imported when called: none of it is needed to parse a DAG file.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "adelete_variable",
    "delete_variable",
    "get_xcom",
    "get_xcoms",
    "in_triggerer",
    "raise_if_refused",
    "set_variable",
    "supervisor_comms",
    "trigger_channel_open",
    "xcom_from_database",
    "xcom_row",
]


# -- the channel to the supervisor (``task_runner.SUPERVISOR_COMMS``) ---------------------------------------------


def supervisor_comms() -> Any:
    """This process's channel to its supervisor (``task_runner.SUPERVISOR_COMMS``), or ``None``."""
    from airflow.sdk.execution_time import task_runner

    return getattr(task_runner, "SUPERVISOR_COMMS", None)


def in_triggerer() -> bool:
    """Whether this code runs in Airflow's triggerer, as opposed to ``dag.test()``, which runs triggers inline.

    Every release's triggerer talks to its supervisor through a ``TriggerCommsDecoder``
    (``task_runner.SUPERVISOR_COMMS``); ``dag.test()`` has another channel or none, and resumes the task with
    whatever the trigger yields.
    """
    return type(supervisor_comms()).__name__ == "TriggerCommsDecoder"


def trigger_channel_open() -> bool:
    """Whether a trigger can send requests to a triggerer's supervisor (``SUPERVISOR_COMMS.asend``).

    Every triggerer's channel has ``asend``; ``dag.test()`` runs the trigger inline, next to the metadata
    database, with no channel (3.0) or the task's synchronous one, not meant for other threads.
    """
    return hasattr(supervisor_comms(), "asend")


async def adelete_variable(key: str) -> None:
    """Delete an Airflow Variable from a trigger, through its supervisor (``comms.DeleteVariable``)."""
    from airflow.sdk.execution_time.comms import DeleteVariable

    raise_if_refused(await supervisor_comms().asend(DeleteVariable(key=key)), "Variable deletion")


def raise_if_refused(answer: Any, what: str) -> None:
    """Raise when the supervisor answered a trigger's request with an ``ErrorResponse``."""
    if type(answer).__name__ == "ErrorResponse":
        raise RuntimeError(f"the triggerer's supervisor refused the {what}: {getattr(answer, 'error', answer)}")


# -- Variables from a task (``execution_time.context``) ------------------------------------------------------------


def set_variable(key: str, value: str, description: str) -> None:
    """Store an Airflow Variable from a task, raising when it fails (``execution_time.context._set_variable``).

    ``Variable.set`` only logs a failure: a value that silently failed to persist is lost to the next try.
    """
    from airflow.sdk.execution_time.context import _set_variable

    _set_variable(key, value, description)


def delete_variable(key: str) -> None:
    """Delete an Airflow Variable from a task (``execution_time.context._delete_variable``)."""
    from airflow.sdk.execution_time.context import _delete_variable

    _delete_variable(key)


# -- XCom rows in the metadata database (``XComModel``; the API server and ``dag.test()``) ------------------------


def xcom_row(key: str, dag_id: str, run_id: str, task_id: str, map_index: int) -> list[Any]:
    """The SQL conditions selecting one XCom row (``XComModel``)."""
    from airflow.models.xcom import XComModel

    return [
        XComModel.key == key,
        XComModel.dag_id == dag_id,
        XComModel.run_id == run_id,
        XComModel.task_id == task_id,
        XComModel.map_index == map_index,
    ]


def get_xcom(session: Any, *, key: str, dag_id: str, run_id: str, task_id: str, map_index: int) -> Any:
    """One XCom value read from the metadata database (``XComModel``), whichever way it was stored."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    row = session.execute(select(XComModel.value).where(*xcom_row(key, dag_id, run_id, task_id, map_index))).first()
    return None if row is None else XComModel.deserialize_value(row)


def get_xcoms(
    session: Any, *, key: str, task_instances: list[tuple[str, str, str, int]]
) -> dict[tuple[str, str, str, int], Any]:
    """The ``key`` XCom of many task instances (``(dag_id, run_id, task_id, map_index)``) in one SQL query on
    ``XComModel``, decoded as :func:`get_xcom` decodes one; task instances without one are left out."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select, tuple_

    if not task_instances:
        return {}
    columns = (XComModel.dag_id, XComModel.run_id, XComModel.task_id, XComModel.map_index)
    query = select(*columns, XComModel.value).where(
        XComModel.key == key, tuple_(*columns).in_(sorted(set(task_instances)))
    )
    return {
        (row.dag_id, row.run_id, row.task_id, row.map_index): XComModel.deserialize_value(row)
        for row in session.execute(query)
    }


def xcom_from_database(**where: Any) -> Any:
    """:func:`get_xcom` in a session of its own (``airflow.utils.session.create_session``)."""
    from airflow.utils.session import create_session

    with create_session() as session:
        return get_xcom(session, **where)
