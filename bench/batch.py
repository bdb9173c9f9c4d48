"""P8: one ``AltaBatchOperator`` over many items against an Alta with a concurrency limit.

The emulator runs in its own process (``alta-emulator``: its CPU, memory and GIL are not counted), with one API
key per row. Each batch runs in a fresh interpreter: the real operator's ``execute``, items read as a stream from
a JSON Lines file, results written under a temporary folder. That process reports its wall time, its manifest
(invokes, queries, worker seconds) and its RSS: the level once everything is imported, and the peak above it
(Linux ``VmHWM``, reset through ``/proc/self/clear_refs`` after the imports).

* **throughput**: a 2 s workflow, Alta's concurrency limit 50 (``max_active_runs`` 50), fixed durations and
  durations spread +-20 %. The emulator's ``time_scale`` runs the workflow faster than its own time, and the
  batch's polling bounds are scaled by the same factor, so the schedule is the one a real 2 s workflow gets;
  the baseline is the ideal ``items x duration / concurrency`` on the same scale. Requests per item count the
  emulator's invokes and queries for the row's key (refused invokes included).
* **memory**: many items with 1 KB outputs: the batch process's peak RSS above its post-import level.
* **webhooks**: the fixed row again with ``airflow_webhook=True``: the provider's receiver app (uvicorn on
  127.0.0.1, its own process, over a PostgreSQL metadata database made for the run, as production runs the API
  server; SQLite when PostgreSQL is not reachable) takes the emulator's deliveries,
  and the batch reads them every ``webhook_check_interval`` (0.25 s, scaled). Requests per item count what the batch
  sends Alta (invokes and queries); the deliveries, and the batch's reads from the receiver, are counted apart.
* **against dynamic task mapping**: ``--airflow`` runs ``bench/batch_vs_mapping.py``: the same items as one batch
  task and as mapped deferrable ``AltaRunWorkflowOperator`` tasks on a real Airflow (PostgreSQL, LocalExecutor).

``python bench/batch.py`` (10,000 and 100,000 items, about ten minutes); ``--quick`` (1,000 and 10,000 items,
what ``make bench`` runs); ``--items N`` / ``--memory-items N`` choose the sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DURATION = 2.0  # the workflow's own seconds
CONCURRENCY = 50  # Alta's concurrency limit, and the batch's max_active_runs
JITTER = 0.2  # +-20 % of the duration
MEMORY_CONCURRENCY = 200
OUTPUT_KB = 1
GOALS = {"ratio": 1.15, "requests_polling": 2.2, "requests_webhook": 1.1, "rss_growth_mb": 150.0}
MB = 1024 * 1024


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


WEBHOOK_SECRET = "whs-bench-batch-0f3c5a7e9b"


class _TaskInstance:
    """What the operator reads of its task instance outside Airflow: its ids (the batch's webhook tokens name
    them); its XComs go nowhere."""

    dag_id, run_id, task_id, map_index, try_number = "bench", "bench_run", "bench_batch", -1, 1

    def xcom_push(self, key: str, value: Any) -> None:
        pass


def child(spec: dict[str, Any]) -> None:
    """One batch in this (fresh) process; prints one JSON line of figures."""
    import logging

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    receiver = spec.get("receiver")
    extra = {"webhook_secret": WEBHOOK_SECRET} if receiver else {}
    os.environ["AIRFLOW_CONN_ALTA_BENCH"] = json.dumps(
        {"conn_type": "alta", "host": spec["url"], "password": spec["key"], "extra": extra}
    )
    if receiver:
        os.environ["AIRFLOW__ALTA__WEBHOOK_ENABLED"] = "True"
        os.environ["AIRFLOW__ALTA__WEBHOOK_BASE_URL"] = receiver
        os.environ["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"{receiver}/execution/"
    import aiohttp  # noqa: F401  (the batch's imports, before the level is taken)

    import airflow_provider_alta._batch.runner  # noqa: F401
    from airflow_provider_alta.hooks.alta import AltaHook
    from airflow_provider_alta.operators.batch import AltaBatchOperator

    AltaHook("alta_bench").get_conn()
    scale = spec["time_scale"]
    operator = AltaBatchOperator(
        task_id="bench_batch",
        input_path=f"file://{spec['input']}",
        key_field="id",
        output_path=f"file://{spec['output']}",
        alta_conn_id="alta_bench",
        max_active_runs=spec["max_active_runs"],
        poll_min_interval=1.0 * scale,
        poll_max_interval=60.0 * scale,
        airflow_webhook=bool(receiver),
        webhook_check_interval=0.25 * scale,
        webhook_fallback_interval=60.0 * scale,
    )
    level = _status_bytes("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    began = time.monotonic()
    manifest = operator.execute({"ti": _TaskInstance()})  # type: ignore[arg-type]
    wall = time.monotonic() - began
    figures = {
        "wall": wall,
        "level_mb": level / MB,
        "peak_mb": _status_bytes("VmHWM") / MB,
        "growth_mb": (_status_bytes("VmHWM") - level) / MB,
        "manifest": {k: v for k, v in manifest.items() if k not in ("results", "failed_keys")},
    }
    print(json.dumps(figures), flush=True)


def start_emulator(root: Path, workflows: dict[str, dict[str, Any]]) -> tuple[subprocess.Popen[bytes], str]:
    """``alta-emulator`` in its own process, on a free port; returns the process and its URL."""
    config = root / "workflows.json"
    config.write_text(json.dumps({"workflows": workflows}))
    port_file = root / "port"
    args = [str(Path(sys.executable).parent / "alta-emulator"), "--port", "0", "--port-file", str(port_file)]
    args += ["--config", str(config), "--quiet", "--seed", "8"]
    emulator = subprocess.Popen(args, stdout=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while not (port_file.exists() and port_file.read_text()):
        if time.monotonic() > deadline or emulator.poll() is not None:
            emulator.terminate()
            raise RuntimeError("the emulator did not start")
        time.sleep(0.1)
    return emulator, f"http://127.0.0.1:{port_file.read_text().strip()}"


def start_receiver(root: Path, emulator_url: str) -> tuple[subprocess.Popen[bytes], str]:
    """The provider's webhook receiver app under uvicorn in its own process, over a fresh SQLite metadata
    database; returns the process and its URL."""
    import socket

    home = root / "airflow"
    home.mkdir()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_ALTA_BENCH": json.dumps(
            {"conn_type": "alta", "host": emulator_url, "extra": {"webhook_secret": WEBHOOK_SECRET}}
        ),
    }
    if (database := _postgres_database()) is not None:
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = database
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    receiver = subprocess.Popen(
        [sys.executable, __file__, "--receiver", str(port)], env=env, stdout=subprocess.DEVNULL, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return receiver, url
        except OSError:
            if time.monotonic() > deadline or receiver.poll() is not None:
                receiver.terminate()
                raise RuntimeError("the receiver did not start") from None
            time.sleep(0.2)


_DATABASES: list[str] = []


def _postgres_database() -> str | None:
    """A PostgreSQL database made for this run (dropped at the end), or ``None`` when PostgreSQL is not reachable."""
    import uuid

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.e2e.stack import PG_HOST, PG_PORT, PG_USER, create_database

    name = f"alta_bench_batch_{uuid.uuid4().hex[:10]}"
    try:
        create_database(name)
    except Exception as exc:  # no server here: the row runs on SQLite, and says so
        print(f"PostgreSQL not reachable ({type(exc).__name__}): the receiver runs on SQLite", file=sys.stderr)
        return None
    _DATABASES.append(name)
    return f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def _drop_databases() -> None:
    from tests.e2e.stack import drop_database

    while _DATABASES:
        drop_database(_DATABASES.pop())


def serve_receiver(port: int) -> None:
    """The receiver app mounted under /alta, as Airflow's API server mounts it (the ``--receiver`` mode)."""
    import uvicorn
    from fastapi import FastAPI

    from airflow_provider_alta._webhook.contract import URL_PREFIX
    from airflow_provider_alta._webhook.receiver import create_app

    app = FastAPI()
    app.mount(URL_PREFIX, create_app())
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def write_items(path: Path, count: int) -> None:
    with path.open("w") as out:
        for n in range(count):
            out.write(json.dumps({"id": f"k{n}", "topic": f"Topic {n}"}) + "\n")


def run_batch(
    root: Path, url: str, key: str, items: int, max_active_runs: int, scale: float, receiver: str | None = None
) -> dict[str, Any]:
    """One batch in a fresh interpreter, bounded; its figures plus the emulator's counts for its key."""
    from airflow_provider_alta.testing.client import EmulatorClient

    source = root / f"items-{items}.jsonl"
    if not source.exists():
        write_items(source, items)
    spec = {
        "url": url,
        "key": key,
        "input": str(source),
        "output": str(root / f"out-{key}"),
        "max_active_runs": max_active_runs,
        "time_scale": scale,
        "receiver": receiver,
    }
    bound = 120 + 4 * items * DURATION * scale / max_active_runs
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True, timeout=bound
    )
    if done.returncode != 0:
        raise RuntimeError(f"the batch of {key} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["closing"] = next((line for line in done.stderr.splitlines() if "Alta batch ended" in line), "")
    emulator = EmulatorClient(url)
    figures["key_stats"] = emulator.key_stats(key)
    if receiver:
        answered = sorted(d.get("seconds", 0.0) for d in emulator.stats()["webhook_deliveries"])
        figures["deliveries"] = len(answered)
        figures["delivery_seconds"] = [answered[len(answered) // 2], answered[int(len(answered) * 0.95)]]
    return figures


def throughput_rows(results: dict[str, dict[str, Any]], items: int, scale: float) -> list[str]:
    ideal = items * DURATION * scale / CONCURRENCY
    lines = [
        f"Throughput: {items:,} items, a {DURATION:g} s workflow run at time scale {scale:g} "
        f"(a run lasts {DURATION * scale:g} s of wall time; the batch's polling bounds scaled alike), "
        f"Alta's concurrency limit {CONCURRENCY}, max_active_runs {CONCURRENCY}; ideal "
        f"items x duration / concurrency = {ideal:.1f} s",
        "",
        "| durations | succeeded | wall s | x ideal | invokes | queries | requests / item | concurrency 429s "
        "| peak in flight | duplicate runs | batch process peak RSS MB (growth) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        stats, manifest = r["key_stats"], r["manifest"]
        requests = stats["invokes"] + stats["queries"]
        lines.append(
            f"| {name} | {manifest['succeeded']}/{manifest['total']} | {r['wall']:.1f} | {r['wall'] / ideal:.3f} "
            f"| {stats['invokes']} | {stats['queries']} | {requests / items:.2f} | {stats['concurrency_refused']} "
            f"| {stats['peak_in_flight']} | {stats['duplicate_runs']} | {r['peak_mb']:.0f} (+{r['growth_mb']:.0f}) |"
        )
    hooked = [r for r in results.values() if "deliveries" in r]
    if hooked:
        median, p95 = hooked[-1]["delivery_seconds"]
        lines += [
            "",
            f"Webhook deliveries: {hooked[-1]['deliveries']:,} in all (not requests to Alta); the receiver answered "
            f"each in {median * 1000:.0f} ms (median), {p95 * 1000:.0f} ms (95th percentile)",
        ]
    return lines


def verdicts(results: dict[str, dict[str, Any]], memory: dict[str, Any] | None, items: int, scale: float) -> list[str]:
    ideal = items * DURATION * scale / CONCURRENCY
    out = [""]
    for name, r in results.items():
        ratio = r["wall"] / ideal
        per_item = (r["key_stats"]["invokes"] + r["key_stats"]["queries"]) / items
        goal, kind = (
            (GOALS["requests_webhook"], "webhooks") if "deliveries" in r else (GOALS["requests_polling"], "polling")
        )
        out.append(
            f"- {name}: wall / ideal {ratio:.3f} (goal <= {GOALS['ratio']}: "
            f"{'met' if ratio <= GOALS['ratio'] else 'MISSED'}); requests per item {per_item:.2f} "
            f"(goal <= {goal} {kind}: {'met' if per_item <= goal else 'MISSED'})"
        )
    if memory is not None:
        growth = memory["growth_mb"]
        out.append(
            f"- memory: peak RSS growth {growth:.0f} MB over {memory['manifest']['total']:,} items "
            f"(goal <= {GOALS['rss_growth_mb']:g} MB: {'met' if growth <= GOALS['rss_growth_mb'] else 'MISSED'})"
        )
    out.append(
        "- against dynamic task mapping on a real Airflow (wall time, worker slot-seconds, metadata rows): "
        "`python bench/batch.py --airflow` (bench/batch_vs_mapping.py)"
    )
    return out


def memory_row(r: dict[str, Any], items: int) -> list[str]:
    m = r["manifest"]
    per_item = (r["key_stats"]["invokes"] + r["key_stats"]["queries"]) / items
    return [
        "",
        f"Memory: {items:,} items with {OUTPUT_KB} KB outputs, max_active_runs {MEMORY_CONCURRENCY}",
        "",
        "| succeeded | wall s | requests / item | worker seconds | RSS after imports MB | peak RSS MB | growth MB |",
        "|---|---|---|---|---|---|---|",
        f"| {m['succeeded']}/{m['total']} | {r['wall']:.1f} "
        f"| {per_item:.2f} | {m['this_try']['worker_seconds']:.1f} "
        f"| {r['level_mb']:.0f} | {r['peak_mb']:.0f} | {r['growth_mb']:.0f} |",
    ]


def workflows(scale: float) -> dict[str, dict[str, Any]]:
    common = {"input_schema": None, "time_scale": scale, "concurrency_limit": CONCURRENCY}
    padding = "x" * (OUTPUT_KB * 1024 - 40)
    return {
        "bench-fixed": {**common, "duration": DURATION},
        "bench-jitter": {**common, "duration": DURATION, "duration_jitter": DURATION * JITTER},
        "bench-webhook": {**common, "duration": DURATION},
        "bench-webhook-jitter": {**common, "duration": DURATION, "duration_jitter": DURATION * JITTER},
        "bench-1kb": {
            **common,
            "duration": 1.0,
            "concurrency_limit": MEMORY_CONCURRENCY,
            "output": {"topic": "${topic}", "text": padding},
        },
    }


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000 items")
    parser.add_argument("--items", type=int, help="items of the throughput rows (default 10,000)")
    parser.add_argument("--memory-items", type=int, help="items of the memory row (default 100,000)")
    parser.add_argument("--time-scale", type=float, default=0.2, help="wall seconds per workflow second")
    parser.add_argument("--airflow", action="store_true", help="batch against dynamic task mapping, real Airflow")
    parser.add_argument("--rows", default="fixed,jitter,webhooks,memory", help="which rows (comma-separated)")
    args = parser.parse_args(argv)
    if args.airflow:
        import batch_vs_mapping

        return batch_vs_mapping.main(["--items", str(args.items or 1000), "--time-scale", str(args.time_scale)])
    items = args.items or (1000 if args.quick else 10_000)
    memory_items = args.memory_items or (10_000 if args.quick else 100_000)
    scale = args.time_scale
    rows = set(args.rows.split(","))
    root = Path(tempfile.mkdtemp(prefix="alta-bench-batch-"))
    emulator, url = start_emulator(root, workflows(scale))
    receiver: subprocess.Popen[bytes] | None = None
    results: dict[str, dict[str, Any]] = {}
    memory: dict[str, Any] | None = None
    try:
        if "fixed" in rows:
            results["fixed 2 s"] = run_batch(root, url, "bench-fixed", items, CONCURRENCY, scale)
        if "jitter" in rows:
            results["2 s +-20 %"] = run_batch(root, url, "bench-jitter", items, CONCURRENCY, scale)
        if "webhooks" in rows:
            receiver, receiver_url = start_receiver(root, url)
            results["fixed 2 s, webhooks"] = run_batch(
                root, url, "bench-webhook", items, CONCURRENCY, scale, receiver=receiver_url
            )
            results["2 s +-20 %, webhooks"] = run_batch(
                root, url, "bench-webhook-jitter", items, CONCURRENCY, scale, receiver=receiver_url
            )
        if "memory" in rows:
            memory = run_batch(root, url, "bench-1kb", memory_items, MEMORY_CONCURRENCY, scale)
    finally:
        for process in (emulator, receiver):
            if process is not None:
                process.terminate()
                process.wait(10)
        _drop_databases()
    lines = [f"## P8: batches ({items:,} items; {memory_items:,} for memory)", ""]
    lines += throughput_rows(results, items, scale)
    if memory is not None:
        lines += memory_row(memory, memory_items)
    lines += verdicts(results, memory, items, scale)
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
    elif len(sys.argv) > 2 and sys.argv[1] == "--receiver":
        serve_receiver(int(sys.argv[2]))
    else:
        main()
