"""Where a task keeps its Alta run id, so that a later try of the same task instance reattaches instead of paying again.

``invoke`` has no idempotency key: a retry that invoked afresh would start a second paid run. So before it waits,
the operator stores the run id in a durable place that any worker sees, and a retry reads it back
(``ResumableJobMixin`` makes the same decision for Airflow's own resumable jobs):

* Airflow 3.3+: the task instance's own state store (``context["task_state_store"]``), which Airflow clears when
  the task succeeds;
* before 3.3, and for a task its trigger may end on every release (no release lets a trigger delete from the
  task state store): one Airflow Variable per task instance, deleted when the task succeeds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

from airflow_provider_alta._airflow import internals
from airflow_provider_alta._airflow.version_compat.task import task_state_store

__all__ = ["RunIdStore", "run_id_store", "variable_key"]


class RunIdStore(Protocol):
    """Where the operator keeps its Alta run id so that a later try of the same task instance finds it."""

    #: Named in the log, so a user knows where the id lives.
    where: str

    def get(self) -> str | None: ...

    def set(self, workflow_run_id: str) -> None: ...

    def clear(self) -> None: ...


class _TaskStateStore:
    """Airflow 3.3+: the task instance's own state store, cleared by Airflow when the task succeeds."""

    where = "the task state store"

    def __init__(self, store: Any, key: str) -> None:
        self._store = store
        self._key = key

    def get(self) -> str | None:
        value = self._store.get(self._key)
        return value if isinstance(value, str) and value else None

    def set(self, workflow_run_id: str) -> None:
        self._store.set(self._key, workflow_run_id)

    def clear(self) -> None:
        delete = getattr(self._store, "delete", None)
        if delete is not None:
            delete(self._key)


class _VariableStore:
    """One Airflow Variable per task instance, holding only the run id.

    Variables live in the metadata database (through the Execution API), so
    the id survives the loss of the worker and is seen by a retry on any
    other worker; they need no configuration and exist on every Airflow 3.
    The key is a digest of the task instance's identity; the description
    names the task instance. The variable is deleted when the task succeeds.
    """

    where = "an Airflow Variable"

    def __init__(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> None:
        identity = json.dumps([dag_id, run_id, task_id, map_index])
        self.key = "alta_run_id." + hashlib.sha256(identity.encode()).hexdigest()[:40]
        index = f"[{map_index}]" if map_index >= 0 else ""
        self.description = (
            f"Alta run of {dag_id}/{run_id}/{task_id}{index}, kept so that a retry reattaches to it "
            "(airflow-provider-alta; deleted when the task succeeds)"
        )
        self.where = f"the Airflow Variable {self.key!r}"

    def get(self) -> str | None:
        from airflow.sdk import Variable

        value = Variable.get(self.key, default=None)
        return value if isinstance(value, str) and value else None

    def set(self, workflow_run_id: str) -> None:
        # A run id that silently failed to persist is a second paid run on the next retry: the setter must raise.
        internals.set_variable(self.key, workflow_run_id, self.description)

    def clear(self) -> None:
        internals.delete_variable(self.key)


def variable_key(store: RunIdStore) -> str | None:
    """The Variable holding the run id, when ``store`` is one (what a trigger deletes when it ends the task)."""
    return store.key if isinstance(store, _VariableStore) else None


def run_id_store(context: Mapping[str, Any], key: str, *, trigger_forgets: bool = False) -> RunIdStore:
    """The durable store of this task instance: Airflow's task state store where it exists, else a Variable.

    ``trigger_forgets``: a trigger may end the task and must then forget the run id itself. No release lets a
    trigger delete from the task state store, so such a task keeps its id in a Variable on every release.
    """
    store = task_state_store(context)
    if store is not None and not trigger_forgets:
        return _TaskStateStore(store, key)
    ti = context["ti"]
    map_index = ti.map_index if ti.map_index is not None else -1
    return _VariableStore(ti.dag_id, ti.run_id, ti.task_id, map_index)
