"""Task instances in the metadata database, for the plumbing that reads and writes their rows."""

from __future__ import annotations

import pytest

from tests.dag_runner import run_dag


@pytest.fixture(scope="session")
def task_instances(airflow_db) -> list[tuple[str, str, str, int]]:
    """Six mapped task instances of one DAG run: ``(dag_id, run_id, task_id, map_index)``, by map index."""
    result = run_dag("t_mailbox_targets")
    return sorted((ti.dag_id, ti.run_id, ti.task_id, ti.map_index) for ti in result.tasks.values())
