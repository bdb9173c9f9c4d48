"""A 2,000-item batch on the production-shape stack, its task process killed with SIGKILL at three points (about
25 %, 50 % and 75 % of the result rows written), as the kernel's OOM killer or a lost container kills it: the
Celery worker's supervisor reports the task failed, Airflow retries it, and each retry resumes the batch from
the records under its output folder.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_alta.testing.client import EmulatorClient
from tests.distributed.conftest import BATCH_KEY
from tests.distributed.figures import FIGURES
from tests.e2e.stack import Stack, wait_for

pytestmark = pytest.mark.distributed

ITEMS = 2000
KILL_AT = (500, 1000, 1500)


def result_rows(folder: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for part in sorted(folder.glob("part-*.jsonl"))
        for line in part.read_text().splitlines()
        if line.strip()
    ]


def rows_written(folder: Path) -> int:
    return sum(part.read_bytes().count(b"\n") for part in folder.glob("part-*.jsonl"))


def task_process(stack: Stack, run_id: str, try_number: int) -> int | None:
    """The pid of the batch task's process in try ``try_number``, once it runs on a Celery worker."""
    ti = stack.task_instance("dist_batch", run_id, "batch")
    if ti["state"] != "running" or ti["try_number"] != try_number or not ti.get("pid"):
        return None
    pid = int(ti["pid"])
    return pid if stack.service_of(pid, stack.worker_names) is not None else None


def kill_when(stack: Stack, run_id: str, folder: Path, rows: int, try_number: int) -> dict[str, Any]:
    """SIGKILL try ``try_number``'s task process once ``rows`` result rows exist; what was seen at the kill."""
    pid: int | None = None

    def ready() -> bool:
        nonlocal pid
        pid = task_process(stack, run_id, try_number)
        return pid is not None and rows_written(folder) >= rows

    wait_for(ready, 120, f"try {try_number} to write {rows} result rows")
    assert pid is not None
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    os.kill(pid, signal.SIGKILL)
    return {
        "try": try_number,
        "rows": rows_written(folder),
        "worker": stack.service_of(pid, stack.worker_names) or "?",
        "process": cmdline.strip()[:80],
    }


def test_a_batch_killed_three_times_pays_once_per_item(stack_for_batch: Stack) -> None:
    stack = stack_for_batch
    emulator = EmulatorClient(stack.emulator_url, BATCH_KEY)
    began = time.monotonic()
    run_id = stack.trigger("dist_batch")
    folder = stack.home / "batches" / run_id
    kills = [kill_when(stack, run_id, folder, rows, try_number) for try_number, rows in enumerate(KILL_AT, 1)]
    assert stack.wait_dag_run("dist_batch", run_id, timeout=180) == "success"
    took = time.monotonic() - began

    ti = stack.task_instance("dist_batch", run_id, "batch")
    assert (ti["state"], ti["try_number"]) == ("success", len(KILL_AT) + 1)  # each kill cost one try, no more
    found = result_rows(folder)
    keys = Counter(row["key"] for row in found)
    assert len(found) == ITEMS and set(keys) == {f"item-{n:04d}" for n in range(ITEMS)}
    assert max(keys.values()) == 1  # one row per key
    statuses = Counter(row["status"] for row in found)
    unknown = statuses.get("UNKNOWN", 0)
    assert statuses["SUCCEED"] + unknown == ITEMS, statuses
    succeeded_ids = [row["workflow_run_id"] for row in found if row["status"] == "SUCCEED"]
    assert len(set(succeeded_ids)) == len(succeeded_ids)

    stats = emulator.key_stats()
    assert stats["duplicate_runs"] == 0 and stats["runs"] == stats["distinct_inputs"]  # never a second paid run
    # Every paid run has its SUCCEED row: the invokes a kill left unanswered that Alta received were named by their
    # webhook deliveries. An UNKNOWN row is an invoke Alta never received: nothing was paid for it.
    assert stats["runs"] == statuses["SUCCEED"], (stats, statuses)
    never_received = ITEMS - stats["runs"]
    assert unknown == never_received
    manifest = stack.xcom("dist_batch", run_id, "batch")
    assert manifest["complete"] and (manifest["total"], manifest["succeeded"]) == (ITEMS, statuses["SUCCEED"])
    assert manifest["unknown"] == unknown
    assert manifest["this_try"]["webhook_deliveries"] > 0
    queries = stats["queries"]
    FIGURES.update(
        {
            "batch kill: kills (try, result rows, worker)": [[k["try"], k["rows"], k["worker"]] for k in kills],
            "batch kill: rows SUCCEED / UNKNOWN": [statuses["SUCCEED"], unknown],
            "batch kill: paid runs / invokes Alta never received": [stats["runs"], never_received],
            "batch kill: queries per item (webhooks)": round(queries / ITEMS, 3),
            "batch kill: peak runs in flight at Alta": stats["peak_in_flight"],
            "batch kill: trigger to success (s)": round(took, 1),
        }
    )
    assert took <= 90, took


@pytest.fixture(scope="module")
def stack_for_batch(dist_stack: Stack) -> Stack:
    return dist_stack
