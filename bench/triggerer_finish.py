"""P5: ending a deferred task in the triggerer against resuming it on a worker, on a real Airflow.

Starts the end-to-end stack (LocalExecutor with 4 slots, SQLite, one
triggerer, all on 127.0.0.1) and runs two mapped DAGs of 40 deferred tasks
one after the other, every Alta run lasting 15 s: ``end_in_triggerer=True``
(the default) and ``end_in_triggerer=False``. Per task: run end → task
success (the emulator's end of the run → the task instance's end date), and
worker slot-seconds: for each time a worker ran the task, the time from its
"run" call to its "state" call on the Execution API (the API server's access
log), summed.
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
from collections import defaultdict
from dataclasses import replace
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.stack import Shape, Stack

KEY = "sk-bench-FINISH-5b7e"
SHAPES = {
    "SQLite": Shape(
        dag_files=("finish_bench_dags.py",),
        workflows=((KEY, {"duration": 15.0}),),
        connections=(("alta_bench", KEY, {}),),
    ),
}
SHAPES["PostgreSQL"] = replace(SHAPES["SQLite"], postgres=True)
DAGS = {"ends in the triggerer (default)": "bench_end_in_triggerer", "resumes on a worker": "bench_resume_on_worker"}
_CALL = re.compile(r"^(\S+Z) .*path=/execution/task-instances/([0-9a-f-]{36})/(run|state) .*status_code=2\d\d")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def slot_seconds(access_log: str) -> dict[str, float]:
    """Per task instance id: the seconds between each "run" call and the "state" call that ends it."""
    started: dict[str, datetime] = {}
    held: dict[str, float] = defaultdict(float)
    for line in access_log.splitlines():
        match = _CALL.match(line)
        if not match:
            continue
        at = datetime.fromisoformat(match[1].replace("Z", "+00:00"))
        ti_id, call = match[2], match[3]
        if call == "run":
            started[ti_id] = at
        elif ti_id in started:
            held[ti_id] += (at - started.pop(ti_id)).total_seconds()
    return held


def worker_starts(access_log: str, ti_id: str) -> int:
    """How many times a worker started the task instance (a start the API server refused is not one)."""
    return sum(1 for m in map(_CALL.match, access_log.splitlines()) if m and m[2] == ti_id and m[3] == "run")


def measure(shape: Shape) -> dict[str, list[dict[str, float]]]:
    stack = Stack(Path(tempfile.mkdtemp(prefix="alta-bench-airflow-")), shape)
    try:
        stack.start()
        results = {}
        for name, dag_id in DAGS.items():
            run_id = stack.trigger(dag_id)
            state = stack.wait_dag_run(dag_id, run_id, timeout=900)
            if state != "success":
                raise RuntimeError(f"{dag_id} ended {state}")
            runs = stack.alta_runs(dag_id, run_id)
            log = (stack.home / "service-api-server.log").read_text(errors="replace")
            held = slot_seconds(log)
            for run, ti in zip(
                sorted(runs, key=lambda r: r["map_index"]),
                sorted(stack.task_instances(dag_id, run_id), key=lambda t: t["map_index"]),
                strict=True,
            ):
                run["slot_seconds"] = held.get(ti["id"], 0.0)
                run["worker_starts"] = worker_starts(log, ti["id"])
            results[name] = runs
        return results
    finally:
        stack.stop()


def main() -> list[str]:
    lines = [
        "## P5: ending deferred tasks in the triggerer (40 deferred runs of 15 s, 4 worker slots)",
        "",
        "| metadata database | after the run | runs | run end → task success p50 / p95 / max "
        "| worker starts per task | worker slot-seconds per task (mean / max) |",
        "|---|---|---|---|---|---|",
    ]
    for database, shape in SHAPES.items():
        lines += _rows(database, measure(shape))
    lines += [
        "",
        "LocalExecutor, one triggerer, everything on this machine. Slot-seconds count the time between a task "
        "process's start and end calls to the Execution API; resuming adds a second execution (execute_complete) "
        "after the scheduler has queued the task again.",
    ]
    print("\n".join(lines))
    return lines


def _rows(database: str, results: dict[str, list[dict[str, float]]]) -> list[str]:
    lines = []
    for name, runs in results.items():
        delays = [run["delay"] for run in runs]
        held = [run["slot_seconds"] for run in runs]
        starts = sorted({int(run["worker_starts"]) for run in runs})
        lines.append(
            f"| {database} | {name} | {len(runs)} | {percentile(delays, 0.5):.1f} s / {percentile(delays, 0.95):.1f} s "
            f"/ {max(delays):.1f} s | {' or '.join(map(str, starts))} "
            f"| {statistics.mean(held):.2f} s / {max(held):.2f} s |"
        )
    return lines


if __name__ == "__main__":
    main()
