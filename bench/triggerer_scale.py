"""1,000 AltaWorkflowRunTriggers in one asyncio loop, as in one triggerer at its default capacity.

The emulator runs in its own process (its CPU is not counted). Each side runs
in a fresh child process, one after the other in the same run:

* ours: ``AltaWorkflowRunTrigger`` (shared aiohttp session, adaptive polling);
* baseline: a dbt-style poller that opens a new aiohttp session for every
  poll, at a fixed interval.

Both sides run twice: over plain HTTP on loopback, and over HTTPS (a
self-signed certificate made for the run), since the real API is HTTPS and a
new session per poll then also means a new TLS handshake per poll.

Reported per side: event-loop lag p50/p99/max (a 50 ms ticker's overshoot),
peak RSS and RSS per trigger, TCP connections the emulator accepted, queries
sent, CPU seconds per 1,000 polls, runs detected. Runs last 6 to 20 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRIGGERS = 1000
DURATIONS = {"bench-key-6s": 6.0, "bench-key-10s": 10.0, "bench-key-15s": 15.0, "bench-key-20s": 20.0}
BASELINE_INTERVAL = 2.0


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def monitor(samples: list[float], rss: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.05)
        samples.append(time.perf_counter() - start - 0.05)
        rss.append(rss_mb())


def _conn(url: str, key: str) -> str:
    conn: dict = {"conn_type": "alta", "host": url, "password": key}
    if url.startswith("https"):
        conn["extra"] = {"verify": False}
    return json.dumps(conn)


def start_runs(url: str) -> list[tuple[str, str]]:
    """Invoke TRIGGERS async runs spread over the keys; return (conn id, run id) pairs."""
    from airflow_provider_alta.hooks.alta import AltaHook

    keys = list(DURATIONS)
    hooks = {}
    for index, key in enumerate(keys):
        conn_id = f"alta_bench_{index}"
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = _conn(url, key)
        hooks[conn_id] = AltaHook(conn_id)
    pairs = []
    for i in range(TRIGGERS):
        conn_id = f"alta_bench_{i % len(keys)}"
        pairs.append((conn_id, hooks[conn_id].invoke_workflow({"topic": f"t{i}"}, is_async=True).workflow_run_id))
    return pairs


async def ours(url: str, pairs: list[tuple[str, str]]) -> int:
    from airflow_provider_alta.triggers.alta import AltaWorkflowRunTrigger

    async def one(conn_id: str, run_id: str) -> bool:
        trigger = AltaWorkflowRunTrigger(run_id, conn_id, last_status="PENDING")
        events = [event.payload async for event in trigger.run()]
        return events[0]["status"] == "success"

    return sum(await asyncio.gather(*(one(c, r) for c, r in pairs)))


async def baseline(url: str, pairs: list[tuple[str, str]]) -> int:
    import aiohttp

    keys = list(DURATIONS)

    async def one(conn_id: str, run_id: str) -> bool:
        key = keys[int(conn_id.rsplit("_", 1)[1])]
        while True:
            await asyncio.sleep(BASELINE_INTERVAL)
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    url + "/v1/workflow/query/result",
                    json={"workflowRunId": run_id},
                    headers={"Authorization": f"Bearer {key}"},
                    ssl=not url.startswith("https"),  # the run's self-signed certificate
                ) as response,
            ):
                body = await response.json()
            if body.get("status") in ("SUCCEED", "FAILED"):
                return body["status"] == "SUCCEED"

    return sum(await asyncio.gather(*(one(c, r) for c, r in pairs)))


def child(side: str, url: str) -> None:
    """One side, in its own process; prints one JSON line of figures."""
    import logging

    logging.disable(logging.WARNING)
    from airflow_provider_alta.testing.client import EmulatorClient

    client = EmulatorClient(url, verify=False)
    client.reset()
    pairs = start_runs(url)
    client_stats = client.stats()
    invoke_connections = client_stats["connections"]

    async def main() -> dict:
        lag: list[float] = []
        rss: list[float] = []
        stop = asyncio.Event()
        ticker = asyncio.create_task(monitor(lag, rss, stop))
        await asyncio.sleep(0.2)
        before_rss = rss_mb()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        began = time.time()
        detected = await (ours if side == "ours" else baseline)(url, pairs)
        elapsed = time.time() - began
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        stop.set()
        await ticker
        stats = client.stats()
        queries = stats["requests"]["query"]
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        lag_ms = sorted(x * 1000 for x in lag)
        return {
            "side": side,
            "detected": detected,
            "seconds": elapsed,
            "queries": queries,
            "connections": stats["connections"] - invoke_connections,
            "cpu_per_1000_polls": cpu / queries * 1000,
            "lag_p50_ms": statistics.median(lag_ms),
            "lag_p99_ms": lag_ms[int(len(lag_ms) * 0.99) - 1],
            "lag_max_ms": lag_ms[-1],
            "peak_rss_mb": max(rss),
            "rss_per_trigger_kb": (max(rss) - before_rss) * 1024 / TRIGGERS,
        }

    print(json.dumps(asyncio.run(main())), flush=True)


def measure(transport: str, root: Path) -> dict[str, dict]:
    """Start the emulator for one transport and run both sides against it."""
    config = root / "workflows.json"
    workflows = {key: {"duration": duration, "input_schema": None} for key, duration in DURATIONS.items()}
    config.write_text(json.dumps({"workflows": workflows}))
    port_file = root / f"port-{transport}"
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "AIRFLOW_HOME": str(root), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    args = [str(bin_dir / "alta-emulator"), "--port", "0", "--port-file", str(port_file), "--config", str(config)]
    if transport == "https":
        from airflow_provider_alta.testing.tls import self_signed

        cert, key = self_signed(root)
        args += ["--tls-cert", str(cert), "--tls-key", str(key)]
    emulator = subprocess.Popen(args, stdout=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        deadline = time.time() + 20
        while not (port_file.exists() and port_file.read_text()) and time.time() < deadline:
            time.sleep(0.1)
        url = f"{transport}://127.0.0.1:{port_file.read_text().strip()}"
        results = {}
        for side in ("ours", "baseline"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", side, url],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=True,
            ).stdout
            results[side] = json.loads(out.strip().splitlines()[-1])
        return results
    finally:
        emulator.terminate()
        emulator.wait(10)


def main() -> list[str]:
    root = Path(tempfile.mkdtemp(prefix="alta-bench-"))
    lines = [
        f"## Triggerer scale: {TRIGGERS} triggers in one loop, runs of 6-20 s",
        "",
        "| transport | side | detected | queries | TCP connections | CPU s / 1,000 polls "
        "| loop lag p50 / p99 / max ms | peak RSS MB | RSS per trigger KB | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for transport in ("http", "https"):
        results = measure(transport, root)
        for side, r in results.items():
            name = "ours" if side == "ours" else f"baseline: new session per poll, every {BASELINE_INTERVAL:g} s"
            lines.append(
                f"| {transport} | {name} | {r['detected']}/{TRIGGERS} | {r['queries']} | {r['connections']} | "
                f"{r['cpu_per_1000_polls']:.2f} | {r['lag_p50_ms']:.1f} / {r['lag_p99_ms']:.1f} / "
                f"{r['lag_max_ms']:.1f} | {r['peak_rss_mb']:.0f} | {r['rss_per_trigger_kb']:.1f} | "
                f"{r['seconds']:.1f} |"
            )
        ratio = results["ours"]["cpu_per_1000_polls"] / results["baseline"]["cpu_per_1000_polls"]
        p99 = results["ours"]["lag_p99_ms"]
        verdicts.append(
            f"- {transport}: CPU per 1,000 polls, ours / baseline {ratio:.2f} "
            f"(target <= 0.5: {'met' if ratio <= 0.5 else 'MISSED'}); our loop lag p99 {p99:.1f} ms "
            f"(target < 100 ms: {'met' if p99 < 100 else 'MISSED'})"
        )
    lines += ["", *verdicts]
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()
