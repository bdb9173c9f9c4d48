"""XComs read and written the same way on every release, whichever API the release offers for it."""

from __future__ import annotations

import pytest

from airflow_provider_alta._airflow import internals
from airflow_provider_alta._airflow.version_compat.xcom import aget_xcom, aset_xcoms, earlier_xcoms, set_xcom
from tests._airflow.supervisor_channel import TriggerCommsDecoder, use_channel


@pytest.fixture
def where(task_instances) -> dict[str, object]:
    """A task instance in the metadata database."""
    dag_id, run_id, task_id, map_index = task_instances[-1]
    return {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index}


def test_the_api_server_stores_an_xcom_as_a_tasks_push_is_stored(where):
    """Plain JSON, replaced in place: a reader gets the object back, never its JSON text, and one row."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    for value in ({"status": "RUNNING"}, {"status": "SUCCEED", "cost": 0.5}):
        with create_session() as session:
            set_xcom(session, key="t_stored", value=value, **where)
    with create_session() as session:
        assert internals.get_xcom(session, key="t_stored", **where) == {"status": "SUCCEED", "cost": 0.5}
        rows = session.scalar(select(func.count()).select_from(XComModel).where(XComModel.key == "t_stored"))
    assert rows == 1


def test_an_xcom_of_a_dag_run_that_does_not_exist_is_refused(where):
    from airflow.utils.session import create_session

    with pytest.raises(ValueError, match=r"DAG run not found"), create_session() as session:
        set_xcom(session, key="t_stored", value=1, **{**where, "run_id": "no_such_run"})


async def test_outside_a_triggerer_a_trigger_reads_the_database(where, monkeypatch):
    """``dag.test()`` runs triggers inline, next to the metadata database, with no channel a trigger may use."""
    from airflow.utils.session import create_session

    with create_session() as session:
        set_xcom(session, key="t_read", value=["a", "b"], **where)
    use_channel(monkeypatch, None)
    assert await aget_xcom(key="t_read", **where) == ["a", "b"]
    assert await aget_xcom(key="t_never_pushed", **where) is None


async def test_in_a_triggerer_reads_and_pushes_go_through_the_supervisor(monkeypatch):
    """3.3's ``XCom.aget_one`` / ``aset`` or, before, the same requests sent on the channel: the supervisor gets
    one read, and one push per key, serialized as the task's own pushes are."""
    from airflow.sdk.execution_time.xcom import XCom

    channel = TriggerCommsDecoder()
    use_channel(monkeypatch, channel)
    where = {"dag_id": "d", "run_id": "manual__1", "task_id": "t", "map_index": 2}
    assert await aget_xcom(key="mailbox", **where) is None
    values = {"return_value": {"news": [1, 2]}, "status": "SUCCEED"}
    await aset_xcoms(values, **where)
    assert channel.kinds() == ["GetXCom", "SetXCom", "SetXCom"]
    read, *pushes = channel.requests
    assert (read.key, read.task_id, read.map_index) == ("mailbox", "t", 2)
    sent = {push.key: push.value for push in pushes}
    assert sent == {key: XCom.serialize_value(value=value, key=key, **where) for key, value in values.items()}
    assert all((push.dag_id, push.run_id, push.map_index) == ("d", "manual__1", 2) for push in pushes)


def test_the_quiet_xcom_lookup_needs_a_channel_it_can_ask(monkeypatch):
    """Without a channel that sends, the lookup answers ``None`` (the caller pulls instead); with one, the slice
    request goes out and its values come back."""
    from airflow.sdk.execution_time.comms import XComSequenceSliceResult

    class Ti:
        dag_id, run_id, task_id = "d", "manual__1", "t"

    use_channel(monkeypatch, None)
    assert earlier_xcoms(Ti(), "history", limit=3) is None
    channel = TriggerCommsDecoder(answer=XComSequenceSliceResult(root=[[1.0], [2.0, 3.0]]))
    use_channel(monkeypatch, channel)
    assert earlier_xcoms(Ti(), "history", limit=3) == [[1.0], [2.0, 3.0]]
    (asked,) = channel.requests
    assert (type(asked).__name__, asked.key, asked.stop, asked.include_prior_dates) == (
        "GetXComSequenceSlice",
        "history",
        3,
        True,
    )
