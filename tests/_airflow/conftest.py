"""Task instances in the metadata database, for the plumbing that reads and writes their rows."""

from __future__ import annotations

import json

import pytest

from tests.dag_runner import run_dag


@pytest.fixture(scope="session")
def task_instances(airflow_db) -> list[tuple[str, str, str, int]]:
    """Six mapped task instances of one DAG run: ``(dag_id, run_id, task_id, map_index)``, by map index."""
    result = run_dag("t_mailbox_targets")
    return sorted((ti.dag_id, ti.run_id, ti.task_id, ti.map_index) for ti in result.tasks.values())


#: An OpenLineage transport that writes nowhere: configured, the provider reports tasks.
FILE_TRANSPORT = json.dumps({"type": "file", "log_file_path": "/dev/null"})


@pytest.fixture
def openlineage_on(monkeypatch):
    """The OpenLineage provider enabled as a deployment enables it: a transport configured (its provider reads its
    settings on every call under pytest)."""
    for name in ("AIRFLOW__OPENLINEAGE__DISABLED", "OPENLINEAGE_DISABLED", "AIRFLOW__OPENLINEAGE__SELECTIVE_ENABLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", FILE_TRANSPORT)
    return monkeypatch
