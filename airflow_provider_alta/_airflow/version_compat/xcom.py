"""How a task, a trigger and the API server read and write XComs on each release, stored the same way on all.

A trigger's reads and pushes never block the triggerer's event loop: the release's async API where it has one,
else the same request sent on the trigger's channel, or ``sync_to_async`` (asgiref, which Airflow ships), the
bridge Airflow's own triggerer offers for sync calls.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping
from typing import Any

from airflow_provider_alta._airflow import internals

__all__ = ["aget_xcom", "aset_xcoms", "earlier_xcoms", "pull_latest_xcom", "set_xcom"]


def earlier_xcoms(ti: Any, key: str, *, limit: int) -> list[Any] | None:
    """Up to ``limit`` values of XCom ``key`` that any instance of this task pushed, in this or earlier DAG runs.

    Asked with a slice request (``comms.GetXComSequenceSlice`` on the task's channel, ``SUPERVISOR_COMMS.send``:
    both internals), which answers an empty list where a plain pull of a missing XCom makes Airflow log
    "[error] XCom not found" (no error at all on a task's first run, or for a mapped instance whose siblings pushed
    first). The values come in no particular order of runs, and say nothing of their map index. ``None`` where
    the task's channel to its supervisor cannot be asked this way: the caller then pulls
    (:func:`pull_latest_xcom`).
    """
    try:
        from airflow.sdk.execution_time.comms import GetXComSequenceSlice, XComSequenceSliceResult

        request = GetXComSequenceSlice(
            key=key,
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            start=None,
            stop=limit,
            step=None,
            include_prior_dates=True,
        )
        comms = internals.supervisor_comms()
    except (ImportError, TypeError, ValueError):
        return None
    if not hasattr(comms, "send"):
        return None
    answer = comms.send(request)
    return list(answer.root) if isinstance(answer, XComSequenceSliceResult) else None


def pull_latest_xcom(ti: Any, key: str) -> Any:
    """The latest value of this task instance's own XCom ``key`` from this or an earlier DAG run (``xcom_pull``).

    Where :func:`earlier_xcoms` cannot ask, and where it found the XCom: a missing one is logged as an Airflow
    error.
    """
    return ti.xcom_pull(task_ids=ti.task_id, key=key, include_prior_dates=True, map_indexes=ti.map_index)


async def aget_xcom(*, key: str, dag_id: str, run_id: str, task_id: str, map_index: int) -> Any:
    """One XCom value of any task instance, read from a trigger without blocking the event loop.

    ``XCom.aget_one`` on 3.3+; before, the same request sent on the triggerer's channel
    (:func:`_aget_xcom_on_channel`). Outside a triggerer (``dag.test()`` runs the trigger inline, next to the
    metadata database) the row is read from the database on every release.
    """
    from airflow.sdk.execution_time.xcom import XCom

    where: dict[str, Any] = {"key": key, "dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index}
    if not internals.trigger_channel_open():
        from asgiref.sync import sync_to_async

        return await sync_to_async(internals.xcom_from_database)(**where)
    if hasattr(XCom, "aget_one"):  # Airflow 3.3+
        return await XCom.aget_one(**where)
    return await _aget_xcom_on_channel(**where)


async def aset_xcoms(values: Mapping[str, Any], *, dag_id: str, run_id: str, task_id: str, map_index: int) -> None:
    """Push XComs from a trigger through the triggerer's supervisor: stored exactly as the task's own pushes.

    The supervisor answers requests between its loop's other work, so each request waits for a turn of that
    loop. 3.3's channel takes requests side by side (``XCom.aset``): all the pushes share one turn. Before, the
    channel sends one request at a time (:func:`_aset_xcom_on_channel`).
    """
    from airflow.sdk.execution_time.xcom import XCom

    where: dict[str, Any] = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index}
    if hasattr(XCom, "aset"):  # Airflow 3.3+
        await asyncio.gather(*(XCom.aset(key, value, **where) for key, value in values.items()))
        return
    for key, value in values.items():
        await _aset_xcom_on_channel(key, value, **where)


def set_xcom(session: Any, *, key: str, value: Any, dag_id: str, run_id: str, task_id: str, map_index: int) -> None:
    """Store an XCom from the API server exactly as a task's own push is stored: plain JSON.

    ``XComModel.set`` does that with ``serialize=False`` (3.2+); before, it stores a JSON *string*, which a
    task reading the value gets back as a string, so the row is written as the Execution API writes it
    (:func:`_replace_xcom_row`).
    """
    from airflow.models.xcom import XComModel

    if "serialize" in inspect.signature(XComModel.set).parameters:
        XComModel.set(
            key,
            value,
            dag_id=dag_id,
            run_id=run_id,
            task_id=task_id,
            map_index=map_index,
            serialize=False,
            session=session,
        )
        return
    _replace_xcom_row(session, key=key, value=value, dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index)


async def _aget_xcom_on_channel(*, key: str, dag_id: str, run_id: str, task_id: str, map_index: int) -> Any:
    """One XCom value read by a trigger through its supervisor (``comms.GetXCom``), as ``XCom.aget_one`` does."""
    from airflow.sdk.execution_time.comms import GetXCom, XComResult
    from airflow.sdk.execution_time.xcom import XCom

    where: dict[str, Any] = {"key": key, "dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index}
    answer = await internals.supervisor_comms().asend(GetXCom(**where))
    if not isinstance(answer, XComResult):
        raise TypeError(f"the triggerer's supervisor answered {type(answer).__name__} to an XCom read")
    return None if answer.value is None else XCom.deserialize_value(answer)


async def _aset_xcom_on_channel(
    key: str, value: Any, *, dag_id: str, run_id: str, task_id: str, map_index: int
) -> None:
    """Push one XCom from a trigger through its supervisor (``comms.SetXCom``), serialized as a task's push is."""
    from airflow.sdk.execution_time.comms import SetXCom
    from airflow.sdk.execution_time.xcom import XCom

    where: dict[str, Any] = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index}
    serialized = XCom.serialize_value(value=value, key=key, **where)
    internals.raise_if_refused(
        await internals.supervisor_comms().asend(SetXCom(key=key, value=serialized, **where)), "XCom push"
    )


def _replace_xcom_row(
    session: Any, *, key: str, value: Any, dag_id: str, run_id: str, task_id: str, map_index: int
) -> None:
    """Write one XCom row as the Execution API writes a task's push: ``value`` as plain JSON, replacing any row.

    ``XComModel`` rows carry their DAG run's id (``DagRun.id``); the row is deleted and added in ``session``.
    """
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from sqlalchemy import delete, select

    dag_run_id = session.scalar(select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    if dag_run_id is None:
        raise ValueError(f"DAG run not found on DAG {dag_id!r} with ID {run_id!r}")
    session.execute(delete(XComModel).where(*internals.xcom_row(key, dag_id, run_id, task_id, map_index)))
    session.add(
        XComModel(
            dag_run_id=dag_run_id,
            key=key,
            value=value,
            run_id=run_id,
            task_id=task_id,
            dag_id=dag_id,
            map_index=map_index,
        )
    )
    session.flush()
