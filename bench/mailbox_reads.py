"""P6: webhook mailbox reads of waiting deferred tasks, per task against batched, on a real Airflow API server.

Starts the end-to-end stack (``tests/e2e/stack.py``: emulator, api-server with the receiver plugin, scheduler,
dag-processor, triggerer; SQLite, all on 127.0.0.1) with ``bench/dags/mailbox_bench_dag.py``: 500 mapped task
instances held in a pool without slots, so they wait as deferred tasks do. Each task instance gets an open
mailbox. Then, for 100 and 500 waiting tasks, side by side:

* per task (before): every task reads its mailbox XCom once a second, the request the triggerer's Execution API
  channel makes (``GET /execution/xcoms/...``, with an Execution API token), spread evenly over the second;
* batched (now): one :func:`airflow_provider_alta._webhook.mailbox_reader.watch_mailbox` per task, the reader sending
  ``POST /alta/mailboxes`` once a second for all of them.

For each: mailbox reads the API server answered per second (requests, and task mailboxes covered), the CPU of
the api-server process tree (from ``/proc``, % of one core), and the delay from a webhook delivery (the run's end:
the receiver writes the notice) to the waiting side seeing it, over 40 deliveries spread across the window.
Self-stopping: about three minutes.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.stack import WEBHOOK_SECRET, Shape, Stack, descendants, wait_for

DAG_ID = "bench_mailbox_waiting"
TASK_ID = "waiting"
CONN_ID = "alta_hooked"
POOL = "mailbox_bench_hold"
WINDOW = 20.0
DELIVERIES = 40
SIZES = (100, 500)

#: Run with the stack's environment: open (or reset) every mailbox, and give each task instance a token.
HELPER = r"""
import json, sys
from airflow.api_fastapi.execution_api.app import _jwt_generator
from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session
from sqlalchemy import select
from airflow_provider_alta._airflow.version_compat.xcom import set_xcom
from airflow_provider_alta._webhook.contract import MAILBOX_KEY, empty_mailbox

dag_id, run_id, conn_id = sys.argv[1:4]
generator = _jwt_generator()
out = []
with create_session() as session:
    rows = session.execute(
        select(TaskInstance.id, TaskInstance.task_id, TaskInstance.map_index, TaskInstance.try_number).where(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
        )
    ).all()
    for row in rows:
        set_xcom(session, key=MAILBOX_KEY, value=empty_mailbox(conn_id), dag_id=dag_id, run_id=run_id,
                 task_id=row.task_id, map_index=row.map_index)
        token = generator.generate(extras={"sub": str(row.id), "scope": "execution"}, valid_for=3600)
        out.append({"map_index": row.map_index, "try_number": row.try_number, "token": token})
print("HELPER-JSON" + json.dumps(out))
"""


def open_mailboxes(stack: Stack, run_id: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-c", HELPER, DAG_ID, run_id, CONN_ID],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("HELPER-JSON"))
    return sorted(json.loads(line.removeprefix("HELPER-JSON")), key=lambda ti: ti["map_index"])


def scheduled(stack: Stack, run_id: str) -> int:
    """How many of the run's task instances are scheduled (read from the SQLite metadata database)."""
    import sqlite3

    database = sqlite3.connect(stack.home / "airflow.db", timeout=30)
    try:
        query = "SELECT count(*) FROM task_instance WHERE dag_id = ? AND run_id = ? AND state = 'scheduled'"
        return int(database.execute(query, (DAG_ID, run_id)).fetchone()[0])
    finally:
        database.close()


def cpu_seconds(root: int) -> float:
    """User + system CPU of ``root`` and every process below it."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in (root, *descendants(root)):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Phase:
    """One measurement: how the waiting side reads, which tasks, and the webhooks delivered meanwhile."""

    def __init__(self, stack: Stack, run_id: str, tis: list[dict[str, Any]], size: int, label: str) -> None:
        self.stack, self.run_id, self.tis, self.size, self.label = stack, run_id, tis[:size], size, label
        self.delivered: dict[int, float] = {}
        self.seen: dict[int, float] = {}
        self.requests = 0
        self.mailboxes_read = 0

    def workflow_run_id(self, index: int) -> str:
        return f"bench-{self.label}-{self.size}-{index}"

    async def deliver(self, session: Any) -> None:
        """Webhooks for ``DELIVERIES`` tasks spread over the window, through the receiver (it writes the notice)."""
        from airflow_provider_alta._webhook.contract import SIGNATURE_HEADER, TaskInstanceRef, WebhookGrant, sign

        step = max(1, self.size // DELIVERIES)
        chosen = list(range(0, self.size, step))[:DELIVERIES]
        spacing = (WINDOW - 4.0) / len(chosen)
        await asyncio.sleep(2.0)
        for index in chosen:
            ti = self.tis[index]
            ref = TaskInstanceRef(CONN_ID, DAG_ID, self.run_id, TASK_ID, ti["map_index"])
            grant = WebhookGrant(ref, ti["try_number"], int(time.time() + 3600))
            body = {"workflowRunId": self.workflow_run_id(index), "status": "SUCCEED", "output": {}}
            self.delivered[index] = time.time()
            url = f"{self.stack.api}/alta{grant.path()}"
            async with session.post(url, json=body, headers={SIGNATURE_HEADER: sign(WEBHOOK_SECRET, grant)}) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"a webhook was answered {resp.status}: {await resp.text()}")
            await asyncio.sleep(spacing)

    async def per_task(self, session: Any) -> None:
        """Every task reads its mailbox once a second through the Execution API, as its trigger did."""
        from airflow_provider_alta._webhook.contract import MAILBOX_KEY, announces_end

        async def one(index: int) -> None:
            ti = self.tis[index]
            url = (
                f"{self.stack.api}/execution/xcoms/{DAG_ID}/{self.run_id}/{TASK_ID}/{MAILBOX_KEY}"
                f"?map_index={ti['map_index']}"
            )
            headers = {"Authorization": f"Bearer {ti['token']}"}
            loop = asyncio.get_running_loop()
            tick = loop.time() + index / self.size
            while True:
                await asyncio.sleep(max(0.0, tick - loop.time()))
                tick += 1.0
                async with session.get(url, headers=headers) as resp:
                    answer = await resp.json(content_type=None)
                    if resp.status != 200:
                        raise RuntimeError(f"an XCom read was answered {resp.status}: {answer}")
                self.requests += 1
                self.mailboxes_read += 1
                if index not in self.seen and announces_end(answer.get("value"), self.workflow_run_id(index)):
                    self.seen[index] = time.time()

        await asyncio.gather(*(one(index) for index in range(self.size)))

    async def batched(self) -> None:
        """Every task waits on the connection's batched reader."""
        from airflow_provider_alta._webhook.contract import TaskInstanceRef
        from airflow_provider_alta._webhook.mailbox_reader import active_readers, watch_mailbox

        async def one(index: int) -> None:
            ref = TaskInstanceRef(CONN_ID, DAG_ID, self.run_id, TASK_ID, self.tis[index]["map_index"])
            async with watch_mailbox(ref, self.workflow_run_id(index), 1.0) as watch:
                await watch.next_end()
                self.seen[index] = time.time()
                await asyncio.Event().wait()  # keeps waiting, as a trigger confirming with Alta would stay a while

        tasks = [asyncio.ensure_future(one(index)) for index in range(self.size)]
        try:
            while True:
                await asyncio.sleep(0.5)
                readers = active_readers()
                self.requests = sum(sent for _, _, sent in readers)
                self.mailboxes_read = self.requests * self.size
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def measure(self, api_pid: int) -> dict[str, Any]:
        import aiohttp

        # The webhooks come in on connections of their own, as Alta's would: not queued behind the reads.
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session,
            aiohttp.ClientSession() as webhooks,
        ):
            reading = asyncio.ensure_future(self.per_task(session) if self.label == "per-task" else self.batched())
            await asyncio.sleep(3.0)  # warmed up
            cpu0, requests0, mailboxes0, t0 = cpu_seconds(api_pid), self.requests, self.mailboxes_read, time.time()
            delivering = asyncio.ensure_future(self.deliver(webhooks))
            await asyncio.sleep(WINDOW)
            cpu1, requests1, mailboxes1, t1 = cpu_seconds(api_pid), self.requests, self.mailboxes_read, time.time()
            await asyncio.wait_for(delivering, 30)
            deadline = time.time() + 10
            while len(self.seen) < len(self.delivered) and time.time() < deadline:
                await asyncio.sleep(0.2)
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
        delays = [self.seen[i] - self.delivered[i] for i in self.delivered if i in self.seen]
        span = t1 - t0
        return {
            "label": self.label,
            "size": self.size,
            "requests_per_s": (requests1 - requests0) / span,
            "mailboxes_per_s": (mailboxes1 - mailboxes0) / span,
            "cpu_pct": 100 * (cpu1 - cpu0) / span,
            "delivered": len(self.delivered),
            "seen": len(delays),
            "p50": percentile(delays, 0.5) if delays else float("nan"),
            "p95": percentile(delays, 0.95) if delays else float("nan"),
        }


def measure() -> tuple[list[dict[str, Any]], float]:
    stack = Stack(
        Path(tempfile.mkdtemp(prefix="alta-bench-mailbox-")),
        Shape(dag_files=("e2e_dags.py", str(Path(__file__).resolve().parent / "dags" / "mailbox_bench_dag.py"))),
    )
    try:
        stack.start()
        stack.airflow("pools", "set", POOL, "0", "holds the mailbox benchmark's task instances")
        run_id = stack.trigger(DAG_ID)
        wait_for(lambda: scheduled(stack, run_id) >= max(SIZES), 180, "the benchmark's task instances to be scheduled")
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = stack.env[f"AIRFLOW_CONN_{CONN_ID.upper()}"]
        os.environ["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"{stack.api}/execution/"
        api_pid = stack.procs["api-server"].pid
        idle0, t0 = cpu_seconds(api_pid), time.time()
        time.sleep(10)
        idle = 100 * (cpu_seconds(api_pid) - idle0) / (time.time() - t0)
        results = []
        for size in SIZES:
            for label in ("per-task", "batched"):
                tis = open_mailboxes(stack, run_id)  # every mailbox empty again
                results.append(asyncio.run(Phase(stack, run_id, tis, size, label).measure(api_pid)))
                print("measured:", json.dumps(results[-1]), flush=True)
        return results, idle
    finally:
        stack.stop()


def main() -> list[str]:
    results, idle = measure()
    lines = [
        "## P6: mailbox reads of waiting webhook tasks (real api-server, SQLite, 2 cores)",
        "",
        "| waiting tasks | reads | requests/s to the API server | mailboxes read/s | api-server CPU "
        "| webhook → seen p50 / p95 | seen |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        name = "per task, 1/s (before)" if r["label"] == "per-task" else "batched reader, 1/s (now)"
        lines.append(
            f"| {r['size']} | {name} | {r['requests_per_s']:.1f} | {r['mailboxes_per_s']:.0f} | {r['cpu_pct']:.0f} % "
            f"| {r['p50']:.2f} s / {r['p95']:.2f} s | {r['seen']}/{r['delivered']} |"
        )
    lines += [
        "",
        f"api-server CPU idle (the stack running, nothing reading): {idle:.0f} % of one core. Reads per task per "
        f"second, batched: 1 request / N tasks. Window {WINDOW:.0f} s per row; {DELIVERIES} webhooks per row, "
        "each written by the receiver into a waiting task's mailbox.",
    ]
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
