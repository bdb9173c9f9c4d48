"""The plumbing on Airflow internals, the same on every release: the supervisor channel, the metadata database."""

from __future__ import annotations

import pytest

from airflow_provider_alta._airflow import internals
from airflow_provider_alta._airflow.version_compat.xcom import set_xcom
from tests._airflow.supervisor_channel import TriggerCommsDecoder, use_channel


class TaskChannel:
    """A task's synchronous channel (what ``dag.test()`` may leave in place): it has no ``asend``."""

    def send(self, msg: object) -> None:
        return None


def test_a_triggerer_is_known_by_its_channel(monkeypatch):
    for channel, triggerer, can_send in ((None, False, False), (TaskChannel(), False, False)):
        use_channel(monkeypatch, channel)
        assert (internals.in_triggerer(), internals.trigger_channel_open()) == (triggerer, can_send)
    use_channel(monkeypatch, TriggerCommsDecoder())
    assert (internals.in_triggerer(), internals.trigger_channel_open()) == (True, True)


async def test_a_trigger_deletes_a_variable_through_its_supervisor(monkeypatch):
    channel = TriggerCommsDecoder()
    use_channel(monkeypatch, channel)
    await internals.adelete_variable("alta_run_id.abc")
    assert channel.kinds() == ["DeleteVariable"] and channel.requests[0].key == "alta_run_id.abc"


async def test_a_refusal_from_the_supervisor_is_raised_with_its_reason(monkeypatch):
    from airflow.sdk.execution_time.comms import ErrorResponse

    use_channel(monkeypatch, TriggerCommsDecoder(answer=ErrorResponse(detail={"reason": "no access"})))
    with pytest.raises(RuntimeError, match="refused the Variable deletion"):
        await internals.adelete_variable("alta_run_id.abc")


def test_many_task_instances_xcoms_are_read_in_one_query(task_instances):
    from airflow.utils.session import create_session

    values = {ti: {"index": ti[3], "text": "caf\u00e9"} for ti in task_instances[:4]}
    with create_session() as session:
        for (dag_id, run_id, task_id, map_index), value in values.items():
            set_xcom(
                session,
                key="t_internals",
                value=value,
                dag_id=dag_id,
                run_id=run_id,
                task_id=task_id,
                map_index=map_index,
            )
    with create_session() as session:
        assert internals.get_xcoms(session, key="t_internals", task_instances=task_instances) == values
        assert internals.get_xcoms(session, key="t_internals", task_instances=[]) == {}
        assert internals.get_xcoms(session, key="no_such_key", task_instances=task_instances) == {}
    dag_id, run_id, task_id, map_index = task_instances[0]
    where = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index}
    assert internals.xcom_from_database(key="t_internals", **where) == values[task_instances[0]]
    assert internals.xcom_from_database(key="no_such_key", **where) is None
