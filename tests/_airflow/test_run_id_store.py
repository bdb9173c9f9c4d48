"""Where a task keeps its run id: the task state store on Airflow 3.3+, else (or when its trigger may end it) a
Variable named after the task instance (the stores' round trips through Airflow run in tests/operators)."""

from __future__ import annotations

from types import SimpleNamespace

from airflow_provider_alta._airflow.run_id_store import run_id_store, variable_key


class TaskStateStore:
    """What Airflow 3.3 puts in the context as ``task_state_store``: a key-value store of one task instance."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def set(self, key: str, value: str) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def ti(**changes: object) -> SimpleNamespace:
    return SimpleNamespace(**{"dag_id": "d", "run_id": "manual__1", "task_id": "t", "map_index": -1, **changes})


def test_the_task_state_store_keeps_the_run_id_where_airflow_has_one():
    state = TaskStateStore()
    store = run_id_store({"task_state_store": state, "ti": ti()}, "alta_workflow_run_id")
    assert variable_key(store) is None and store.where == "the task state store"
    assert store.get() is None
    store.set("r-1")
    assert (state.values, store.get()) == ({"alta_workflow_run_id": "r-1"}, "r-1")
    store.clear()
    assert (state.values, store.get()) == ({}, None)


def test_a_task_its_trigger_may_end_keeps_its_run_id_in_a_variable():
    """No release lets a trigger delete from the task state store: such a task keeps its id in a Variable."""
    context = {"task_state_store": TaskStateStore(), "ti": ti()}
    key = variable_key(run_id_store(context, "k", trigger_forgets=True))
    assert key is not None and key.startswith("alta_run_id.")
    assert variable_key(run_id_store({"ti": ti()}, "k")) == key  # before 3.3, every task: the same Variable


def test_each_task_instance_has_a_variable_of_its_own_named_in_the_log():
    stores = [run_id_store({"ti": ti(**changes)}, "k") for changes in ({}, {"map_index": 0}, {"map_index": 1})]
    stores.append(run_id_store({"ti": ti(map_index=None)}, "k"))  # a task that is not mapped, as some releases say
    keys = [variable_key(store) for store in stores]
    assert len(set(keys[:3])) == 3 and keys[3] == keys[0]
    assert all(isinstance(key, str) and len(key) == len("alta_run_id.") + 40 for key in keys)
    assert stores[1].where == f"the Airflow Variable {keys[1]!r}"
    assert "d/manual__1/t[0]" in stores[1].description and "deleted when the task succeeds" in stores[1].description
