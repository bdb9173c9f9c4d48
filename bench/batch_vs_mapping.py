"""P8: the same items as one ``AltaBatchOperator`` and as dynamic task mapping, on the same real Airflow.

Starts the end-to-end stack (``tests/e2e/stack.py``: emulator, api-server, scheduler, dag-processor, triggerer, all
on 127.0.0.1) on a fresh PostgreSQL database with the LocalExecutor (parallelism 32) and
``bench/dags/batch_mapping_dags.py``. A 2 s workflow runs at the emulator's time scale 0.2 (0.4 s of wall time),
Alta's concurrency limit 50 per key; each side has its own key. After a warm-up run (the triggerer's one-time
start-up) and an idle minute (the metadata writes Airflow makes with nothing running), one side after the other:

* ``bench_items_batch``: one ``AltaBatchOperator``, ``max_active_runs`` 50;
* ``bench_items_mapped``: ``AltaRunWorkflowOperator.partial(deferrable=True).expand(input=...)``, the DAG's
  ``max_active_tasks`` 32 (deferred tasks hold no slot and do not count), ending in the triggerer (the default).

Per side: wall time (the DAG run's ``queued_at`` → its ``end_date``); worker slot-seconds (for every try of every
task instance, the time from the task process's ``run`` call to its ``state`` call on the Execution API, from the
API server's access log: a deferring try ends at its ``state`` call, so time deferred is not counted); metadata rows
written (PostgreSQL's per-table counters of rows inserted, updated and deleted, and the row counts, before and
after the run); and the emulator's counts for the side's key (paid runs, duplicates, queries).

The whole run is bounded (``--timeout``, 40 minutes by default): on expiry it stops, and every process, the
database and the Airflow home (``--keep`` keeps the home, with its logs) are removed whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.stack import Shape, Stack, descendants

DAGS_FILE = Path(__file__).resolve().parent / "dags" / "batch_mapping_dags.py"
DURATION = 2.0  # the workflow's own seconds
CONCURRENCY = 50  # Alta's limit per key, and the batch's max_active_runs
PARALLELISM = 32  # the LocalExecutor's slots; the mapped DAG's max_active_tasks
KEYS = {
    "batch": "sk-bench-ITEMS-BATCH-3c1d",
    "mapped": "sk-bench-ITEMS-MAPPED-7e90",
    "warm_up": "sk-bench-ITEMS-WARM-52af",
}
SIDES = {"batch": "bench_items_batch", "mapped": "bench_items_mapped"}
GOALS = {"wall": 0.25, "slot_seconds": 0.05}
IDLE_SECONDS = 60.0
#: PostgreSQL flushes a backend's table counters at most once a second, an idle one's within 10 s.
SETTLE_SECONDS = 12.0
_CALL = re.compile(r"^(\S+Z) .*path=/execution/task-instances/([0-9a-f-]{36})/(run|state) .*status_code=2\d\d")


def shape(items: int, scale: float) -> Shape:
    workflow = {"input_schema": None, "duration": DURATION, "time_scale": scale, "concurrency_limit": CONCURRENCY}
    return Shape(
        postgres=True,
        dag_files=(str(DAGS_FILE),),
        workflows=tuple((key, workflow) for key in KEYS.values()),
        connections=tuple((f"alta_bench_{side}", key, {}) for side, key in KEYS.items()),
        env=(
            ("AIRFLOW__CORE__PARALLELISM", str(PARALLELISM)),
            ("AIRFLOW__CORE__MAX_MAP_LENGTH", str(max(1024, items))),
            ("ALTA_BENCH_ITEMS", str(items)),
            ("ALTA_BENCH_TIME_SCALE", str(scale)),
        ),
    )


# -- metadata rows ----------------------------------------------------------------------------------------------
def table_counters(stack: Stack) -> dict[str, dict[str, int]]:
    """Per table: rows now, and PostgreSQL's cumulative counts of rows inserted, updated and deleted."""
    stats = stack.sql("SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables")
    out = {}
    for name, ins, upd, dele in stats:
        rows = stack.sql(f'SELECT count(*) FROM "{name}"')[0][0]
        out[name] = {"rows": rows, "inserted": ins, "updated": upd, "deleted": dele}
    return out


def counter_delta(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    zero = {"rows": 0, "inserted": 0, "updated": 0, "deleted": 0}
    delta = {}
    for name, now in after.items():
        was = before.get(name, zero)
        change = {field: now[field] - was[field] for field in zero}
        if any(change.values()):
            delta[name] = change
    return delta


def written(delta: dict[str, dict[str, int]]) -> int:
    """Rows written: inserted + updated + deleted, over every table."""
    return sum(t["inserted"] + t["updated"] + t["deleted"] for t in delta.values())


# -- worker slots ----------------------------------------------------------------------------------------------
def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def slot_seconds(access_log: str, ti_ids: set[str]) -> tuple[float, int, int]:
    """Seconds task processes of these task instance ids held a slot (each ``run`` call to the ``state`` call that
    ends that execution), how many executions started, and how many have no ``state`` call in the log."""
    started: dict[str, float] = {}
    held, starts = 0.0, 0
    for line in access_log.splitlines():
        match = _CALL.match(line)
        if not match or match[2] not in ti_ids:
            continue
        at, ti_id, call = _timestamp(match[1]), match[2], match[3]
        if call == "run":
            started[ti_id] = at
            starts += 1
        elif ti_id in started:
            held += at - started.pop(ti_id)
    return held, starts, len(started)


def try_ids(stack: Stack, dag_id: str, run_id: str) -> set[str]:
    """The ids of every try of the run's task instances (Airflow gives each try its own id)."""
    now = stack.sql("SELECT id FROM task_instance WHERE dag_id = %s AND run_id = %s", dag_id, run_id)
    earlier = stack.sql(
        "SELECT task_instance_id FROM task_instance_history WHERE dag_id = %s AND run_id = %s", dag_id, run_id
    )
    return {str(row[0]) for row in (*now, *earlier)}


# -- CPU -----------------------------------------------------------------------------------------------------------
def cpu_seconds(stack: Stack) -> dict[str, float]:
    """Per service: CPU seconds of its process and every living descendant, each with the children it reaped
    (a task process's time is in its supervisor's, then in the executor worker's, once each has exited)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, proc in stack.procs.items():
        ticks = 0
        for pid in (proc.pid, *descendants(proc.pid)):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks += sum(int(field) for field in fields[11:15])  # utime, stime, cutime, cstime
        out[name] = ticks / tick
    return out


# -- one side -------------------------------------------------------------------------------------------------
def wait_run(stack: Stack, dag_id: str, run_id: str, deadline: float) -> str:
    """Wait for the DAG run to end, printing its task states every 30 s."""
    shown = time.monotonic()
    while time.monotonic() < deadline:
        state = stack.sql("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", dag_id, run_id)[0][0]
        if state in ("success", "failed"):
            return str(state)
        if time.monotonic() - shown > 30:
            shown = time.monotonic()
            counts = stack.sql(
                "SELECT coalesce(state, 'none'), count(*) FROM task_instance WHERE dag_id = %s AND run_id = %s "
                "GROUP BY 1 ORDER BY 1",
                dag_id,
                run_id,
            )
            print(f"  {dag_id}: {dict(counts)}", file=sys.stderr, flush=True)
        time.sleep(0.5)
    raise TimeoutError(f"{dag_id} did not end in time")


def measure_side(stack: Stack, side: str, deadline: float) -> dict[str, Any]:
    from airflow_provider_alta.testing.client import EmulatorClient

    dag_id = SIDES[side]
    time.sleep(SETTLE_SECONDS)
    before = table_counters(stack)
    cpu_before = cpu_seconds(stack)
    run_id = stack.trigger(dag_id)
    print(f"{side}: triggered {run_id}", file=sys.stderr, flush=True)
    state = wait_run(stack, dag_id, run_id, deadline)
    cpu_after = cpu_seconds(stack)
    time.sleep(SETTLE_SECONDS)
    after = table_counters(stack)
    queued, started, ended = stack.sql(
        "SELECT queued_at, start_date, end_date FROM dag_run WHERE dag_id = %s AND run_id = %s", dag_id, run_id
    )[0]
    tis = stack.sql("SELECT state, try_number FROM task_instance WHERE dag_id = %s AND run_id = %s", dag_id, run_id)
    log = (stack.home / "service-api-server.log").read_text(errors="replace")
    held, starts, unended = slot_seconds(log, try_ids(stack, dag_id, run_id))
    states: dict[str, int] = defaultdict(int)
    for ti_state, _ in tis:
        states[str(ti_state)] += 1
    return {
        "state": state,
        "run_id": run_id,
        "wall": (ended - queued).total_seconds(),
        "queued_to_start": (started - queued).total_seconds(),
        "slot_seconds": held,
        "executions": starts,
        "executions_without_end": unended,
        "task_instances": len(tis),
        "ti_states": dict(states),
        "tries": sum(int(t) for _, t in tis),
        "rows": counter_delta(before, after),
        "cpu": {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after},
        "emulator": EmulatorClient(stack.emulator_url).key_stats(KEYS[side]),
    }


def idle_rows(stack: Stack, seconds: float) -> dict[str, dict[str, int]]:
    """The metadata writes of an idle stack over ``seconds``."""
    time.sleep(SETTLE_SECONDS)
    before = table_counters(stack)
    time.sleep(seconds)
    return counter_delta(before, table_counters(stack))


def _expire(signum: int, frame: Any) -> None:
    raise TimeoutError("the benchmark ran out of time")


def measure(items: int, scale: float, timeout_s: float, idle_s: float, keep: bool) -> dict[str, Any]:
    signal.signal(signal.SIGALRM, _expire)
    signal.alarm(int(timeout_s))  # a hard stop, even inside a wait; the stack is stopped below either way
    deadline = time.monotonic() + timeout_s - 60
    stack = Stack(Path(tempfile.mkdtemp(prefix="alta-bench-mapping-")), shape(items, scale))
    try:
        began = time.monotonic()
        stack.start()
        warm = stack.trigger("bench_items_warm_up")
        if stack.wait_dag_run("bench_items_warm_up", warm, timeout=300) != "success":
            raise RuntimeError("bench_items_warm_up did not succeed")
        result: dict[str, Any] = {
            "startup": time.monotonic() - began,
            "idle": idle_rows(stack, idle_s),
            "idle_seconds": idle_s,
        }
        for side in SIDES:
            result[side] = measure_side(stack, side, deadline)
        return result
    finally:
        signal.alarm(0)
        stack.stop()
        if keep:
            print(f"logs kept in {stack.home}", file=sys.stderr)
        else:
            shutil.rmtree(stack.home, ignore_errors=True)


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--time-scale", type=float, default=0.2, help="wall seconds per workflow second")
    parser.add_argument("--timeout", type=float, default=40.0, help="minutes before the run is abandoned")
    parser.add_argument("--idle", type=float, default=IDLE_SECONDS, help="seconds of the idle baseline")
    parser.add_argument("--keep", action="store_true", help="keep the Airflow home (logs)")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)
    with open("/proc/loadavg") as loadavg:
        load_before = " ".join(loadavg.read().split()[:3])
    result = measure(args.items, args.time_scale, args.timeout * 60, args.idle, args.keep)
    with open("/proc/loadavg") as loadavg:
        result["load"] = {"before": load_before, "after": " ".join(loadavg.read().split()[:3])}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    lines = report(result, args.items, args.time_scale)
    print("\n".join(lines))
    return lines


def report(result: dict[str, Any], items: int, scale: float) -> list[str]:
    batch, mapped = result["batch"], result["mapped"]
    lines = [
        f"## P8: {items:,} items as one batch and as dynamic task mapping (real Airflow, PostgreSQL)",
        "",
        f"A {DURATION:g} s workflow at time scale {scale:g} ({DURATION * scale:g} s of wall time), Alta's concurrency "
        f"limit {CONCURRENCY} per key; LocalExecutor, parallelism {PARALLELISM}; load average before / after: "
        f"{result['load']['before']} / {result['load']['after']}.",
        "",
        "| side | DAG run | wall s | worker executions | worker slot-seconds | CPU s (Airflow + emulator) "
        "| task instances (tries) | metadata rows written (ins / upd / del) | net rows added | paid runs "
        "| duplicates | queries |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in (("batch (AltaBatchOperator)", batch), ("mapping (deferrable, expand)", mapped)):
        rows = r["rows"]
        ins = sum(t["inserted"] for t in rows.values())
        upd = sum(t["updated"] for t in rows.values())
        dele = sum(t["deleted"] for t in rows.values())
        net = sum(t["rows"] for t in rows.values())
        emu = r["emulator"]
        lines.append(
            f"| {name} | {r['state']} | {r['wall']:.1f} | {r['executions']} | {r['slot_seconds']:.1f} "
            f"| {sum(r['cpu'].values()) - r['cpu'].get('emulator', 0.0):.0f} + {r['cpu'].get('emulator', 0.0):.0f} "
            f"| {r['task_instances']} ({r['tries']}) | {written(rows):,} ({ins:,} / {upd:,} / {dele:,}) | {net:,} "
            f"| {emu['runs']} | {emu['duplicate_runs']} | {emu['queries']} |"
        )
    wall = batch["wall"] / mapped["wall"]
    slots = batch["slot_seconds"] / mapped["slot_seconds"] if mapped["slot_seconds"] else float("inf")
    rows_ratio = written(batch["rows"]) / max(1, written(mapped["rows"]))
    lines += [
        "",
        f"- wall time batch / mapping: {wall:.3f} (goal <= {GOALS['wall']}: "
        f"{'met' if wall <= GOALS['wall'] else 'MISSED'})",
        f"- worker slot-seconds batch / mapping: {slots:.3f} (goal <= {GOALS['slot_seconds']}: "
        f"{'met' if slots <= GOALS['slot_seconds'] else 'MISSED'})",
        f"- metadata rows written batch / mapping: {rows_ratio:.4f}",
        *(
            f"- CPU seconds by service, {name}: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(r["cpu"].items()))
            for name, r in (("batch", batch), ("mapping", mapped))
        ),
        "",
        "Metadata rows written, top tables (inserted / updated / deleted; net rows added):",
        "",
        f"| table | batch | mapping | idle stack, {result['idle_seconds']:g} s |",
        "|---|---|---|---|",
    ]
    idle = result["idle"]
    tables = sorted(
        set(batch["rows"]) | set(mapped["rows"]),
        key=lambda t: -_total(mapped["rows"].get(t)) - _total(batch["rows"].get(t)),
    )
    for table in tables[:12]:
        lines.append(
            f"| {table} | {_cell(batch['rows'].get(table))} | {_cell(mapped['rows'].get(table))} "
            f"| {_cell(idle.get(table))} |"
        )
    lines.append(f"| all tables | {_cell_sum(batch['rows'])} | {_cell_sum(mapped['rows'])} | {_cell_sum(idle)} |")
    return lines


def _total(change: dict[str, int] | None) -> int:
    return 0 if change is None else change["inserted"] + change["updated"] + change["deleted"]


def _cell(change: dict[str, int] | None) -> str:
    if not change:
        return "0"
    return f"{change['inserted']:,} / {change['updated']:,} / {change['deleted']:,}; {change['rows']:+,}"


def _cell_sum(changes: dict[str, dict[str, int]]) -> str:
    summed = {k: sum(c[k] for c in changes.values()) for k in ("rows", "inserted", "updated", "deleted")}
    return _cell(summed)


if __name__ == "__main__":
    main()
