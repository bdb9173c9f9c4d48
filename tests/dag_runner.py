"""Run a test DAG with ``dag.test()`` and read back what it left behind."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any

from tests.conftest import DAGS


@dataclass
class DagResult:
    state: str
    tasks: dict[str, Any]  # "task_id" or "task_id[map_index]" -> task instance

    def ti(self, task_id: str, map_index: int = -1) -> Any:
        return self.tasks[task_id if map_index < 0 else f"{task_id}[{map_index}]"]

    def xcom(self, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        ti = self.ti(task_id, map_index)
        return ti.xcom_pull(task_ids=task_id, key=key, map_indexes=map_index)


def run_dag(dag_id: str) -> DagResult:
    if str(DAGS) not in sys.path:
        sys.path.insert(0, str(DAGS))
    import alta_test_dags

    dr = getattr(alta_test_dags, dag_id).test()
    tasks = {}
    for ti in dr.get_task_instances():
        tasks[ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"] = ti
    return DagResult(state=str(dr.state), tasks=tasks)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def plain(output: str) -> str:
    """Captured task output as one line of text: Airflow 3.0/3.1 colour tracebacks and wrap them at the
    terminal's width, splitting the messages the tests look for."""
    return re.sub(r"\s+", " ", _ANSI.sub("", output))


def log_lines(capsys: Any, caplog: Any, logger: str) -> list[str]:
    """The lines a logger whose name ends with ``logger`` wrote during a test, as ``[level] message``, wherever this
    Airflow sends them: structlog prints them (3.3's hooks and triggers log through it), older releases log through
    ``logging``."""
    named = re.compile(rf"\[(?:[\w.]+\.)?{re.escape(logger)}\]")
    printed = [
        re.sub(r"^[^\[]*", "", plain(line))  # structlog's timestamp first
        for line in capsys.readouterr().out.splitlines()
        if named.search(line)
    ]
    logged = [f"[{r.levelname.lower()}] {r.getMessage()}" for r in caplog.records if r.name.endswith(logger)]
    return printed or logged
