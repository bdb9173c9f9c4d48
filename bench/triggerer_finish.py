"""P5: ending a deferred task in the triggerer against resuming it on a worker, on a real Airflow.

Starts the end-to-end stack (LocalExecutor with 4 slots, SQLite, one
triggerer, all on 127.0.0.1) and runs two mapped DAGs of 40 deferred tasks
one after the other (after a warm-up run), every Alta run lasting 15 s: ``end_in_triggerer=True``
(the default) and ``end_in_triggerer=False``. Per task: run end → task
success (the emulator's end of the run → the task instance's end date), and
worker slot-seconds: for each time a worker ran the task, the time from its
"run" call to its "state" call on the Execution API (the API server's access
log), summed. And per task, whether its log (the worker's and the trigger's files) holds the run's closing line
and Airflow's "Trigger fired event" line: a missing line is counted, not fatal.
"""

from __future__ import annotations

import json
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
WARM_UP_KEY = "sk-bench-FINISH-warm-91c2"
SHAPES = {
    "SQLite": Shape(
        dag_files=("finish_bench_dags.py",),
        workflows=((KEY, {"duration": 15.0}), (WARM_UP_KEY, {"duration": 2.0})),
        connections=(("alta_bench", KEY, {}), ("alta_bench_warm_up", WARM_UP_KEY, {})),
    ),
}
SHAPES["PostgreSQL"] = replace(SHAPES["SQLite"], postgres=True)
DAGS = {"ends in the triggerer (default)": "bench_end_in_triggerer", "resumes on a worker": "bench_resume_on_worker"}
#: The run's closing line, which the task's log must hold whichever path the task took.
_CLOSING = re.compile(r"ended SUCCEED in [0-9.]+ s: cost \S+ credits, \S+ tokens")
_CALL = re.compile(r"^(\S+Z) .*path=/execution/task-instances/([0-9a-f-]{36})/(run|state) .*status_code=2\d\d")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def slot_seconds(access_log: str) -> dict[str, float]:
    """Per task instance id: the seconds between each "run" call and the "state" call that ends it."""
    started: dict[str, float] = {}
    held: dict[str, float] = defaultdict(float)
    for line in access_log.splitlines():
        match = _CALL.match(line)
        if not match:
            continue
        at = _timestamp(match[1])
        ti_id, call = match[2], match[3]
        if call == "run":
            started[ti_id] = at
        elif ti_id in started:
            held[ti_id] += at - started.pop(ti_id)
    return held


def worker_starts(access_log: str, ti_id: str) -> int:
    """How many times a worker started the task instance (a start the API server refused is not one)."""
    return sum(1 for m in map(_CALL.match, access_log.splitlines()) if m and m[2] == ti_id and m[3] == "run")


def trigger_fired(home: Path, dag_id: str) -> dict[int, float]:
    """Per map index: when the task's trigger fired its event (the trigger log's "Trigger fired event" line).

    A task whose trigger log lacks the line is left out (Airflow writes a trigger's lines that it reads after the
    trigger ended to the triggerer's own output).
    """
    fired = {}
    for path in (home / "logs" / f"dag_id={dag_id}").rglob("*.log.trigger.*"):
        for line in path.read_text(errors="replace").splitlines():
            if '"Trigger fired event"' in line:
                fired[_map_index(path)] = _timestamp(json.loads(line)["timestamp"])
    return fired


def closing_lines(home: Path, dag_id: str) -> dict[int, bool]:
    """Per map index: whether the task's log (its worker's and its trigger's files) holds the run's closing line."""
    found: dict[int, bool] = defaultdict(bool)
    for path in (home / "logs" / f"dag_id={dag_id}").rglob("attempt=*.log*"):
        found[_map_index(path)] |= bool(_CLOSING.search(path.read_text(errors="replace")))
    return found


def _map_index(path: Path) -> int:
    index = re.search(r"map_index=(-?\d+)", str(path))
    return int(index[1]) if index else -1


def warm_up_seconds(home: Path) -> float | None:
    """How long the triggerer took to build its in-process Execution API (the warm-up's log line)."""
    for path in (home / "logs" / "dag_id=bench_warm_up").rglob("*.log.trigger.*"):
        for line in path.read_text(errors="replace").splitlines():
            found = re.search(r"Execution API answered in ([0-9.]+) s", line)
            if found:
                return float(found[1])
    return None


def _p50_p95(values: list[float]) -> str:
    return f"{percentile(values, 0.5):.1f}, {percentile(values, 0.95):.1f} s" if values else "-"


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def stray_closing_lines(home: Path) -> int:
    """Closing lines the triggerer wrote to its own output: lines of a trigger it read after the trigger ended."""
    triggerer = home / "service-triggerer.log"
    return len(_CLOSING.findall(triggerer.read_text(errors="replace"))) if triggerer.exists() else 0


def measure(shape: Shape) -> tuple[dict[str, list[dict[str, float]]], float | None, int]:
    stack = Stack(Path(tempfile.mkdtemp(prefix="alta-bench-airflow-")), shape)
    try:
        stack.start()
        warm_run = stack.trigger("bench_warm_up")
        if stack.wait_dag_run("bench_warm_up", warm_run, timeout=600) != "success":
            raise RuntimeError("bench_warm_up did not succeed")
        results = {}
        for name, dag_id in DAGS.items():
            run_id = stack.trigger(dag_id)
            state = stack.wait_dag_run(dag_id, run_id, timeout=900)
            if state != "success":
                raise RuntimeError(f"{dag_id} ended {state}")
            runs = stack.alta_runs(dag_id, run_id)
            log = (stack.home / "service-api-server.log").read_text(errors="replace")
            held = slot_seconds(log)
            fired = trigger_fired(stack.home, dag_id)
            closing = closing_lines(stack.home, dag_id)
            for run, ti in zip(
                sorted(runs, key=lambda r: r["map_index"]),
                sorted(stack.task_instances(dag_id, run_id), key=lambda t: t["map_index"]),
                strict=True,
            ):
                run["slot_seconds"] = held.get(ti["id"], 0.0)
                run["worker_starts"] = worker_starts(log, ti["id"])
                index = run["map_index"]
                run["fired"] = fired[index] - run["ends_at"] if index in fired else None
                run["closing_line"] = closing[index]
            results[name] = runs
        return results, warm_up_seconds(stack.home), stray_closing_lines(stack.home)
    finally:
        stack.stop()


def main() -> list[str]:
    lines = [
        "## P5: ending deferred tasks in the triggerer (40 deferred runs of 15 s, 4 worker slots)",
        "",
        "| metadata database | after the run | runs | run end → task success p50 / p95 / max "
        "| run end → seen / → trigger fired (p50, p95) | worker starts per task | worker slot-seconds per task "
        '(mean / max) | task logs without the closing line / without "Trigger fired event" |',
        "|---|---|---|---|---|---|---|---|",
    ]
    warm_ups, strays = [], []
    for database, shape in SHAPES.items():
        results, warm_up, stray = measure(shape)
        lines += _rows(database, results)
        warm_ups.append(f"{database} {'?' if warm_up is None else f'{warm_up:.1f} s'}")
        strays.append(f"{database} {stray}")
    lines += [
        "",
        "Each stack first runs `bench_warm_up` (one deferred run of 2 s ending in the triggerer): the triggerer's "
        f"one-time build of its in-process Execution API took {', '.join(warm_ups)} there, during which its "
        "supervisor answers no trigger.",
        "LocalExecutor, one triggerer, everything on this machine. Slot-seconds count the time between a task "
        "process's start and end calls to the Execution API; resuming adds a second execution (execute_complete) "
        "after the scheduler has queued the task again.",
        f"Closing lines the triggerer wrote to its own output instead of a task's log: {', '.join(strays)}.",
    ]
    print("\n".join(lines))
    return lines


def _rows(database: str, results: dict[str, list[dict[str, float]]]) -> list[str]:
    lines = []
    for name, runs in results.items():
        delays = [run["delay"] for run in runs]
        seen = [run["noticed"] for run in runs]
        fired = [run["fired"] for run in runs if run["fired"] is not None]
        without_closing = sum(1 for run in runs if not run["closing_line"])
        held = [run["slot_seconds"] for run in runs]
        starts = sorted({int(run["worker_starts"]) for run in runs})
        lines.append(
            f"| {database} | {name} | {len(runs)} | {percentile(delays, 0.5):.1f} s / {percentile(delays, 0.95):.1f} s "
            f"/ {max(delays):.1f} s | {percentile(seen, 0.5):.1f}, {percentile(seen, 0.95):.1f} s / "
            f"{_p50_p95(fired)} | {' or '.join(map(str, starts))} "
            f"| {statistics.mean(held):.2f} s / {max(held):.2f} s | {without_closing} / {len(runs) - len(fired)} |"
        )
    return lines


if __name__ == "__main__":
    main()
