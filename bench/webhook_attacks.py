"""The webhook receiver under attack, on a real ``airflow api-server`` (SQLite, 127.0.0.1 only).

Starts only an API server with the receiver plugin, in a temporary AIRFLOW_HOME, and throws at it what
issue 17 found: big bodies with a valid token (memory of the API server's process tree, idle against the
peak while they arrive), a declared 10 GB body and a stalled one (time to the answer), 1,000 unauthenticated
requests with hostile ids (log bytes they add, and whether any raw control character reached the log), a
stream of refused requests (per second), and the latency of refusals for unknown, secretless and real
connection ids (a difference would tell which exist). Bounded: a few minutes at most.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil

from airflow_provider_alta._webhook.contract import SIGNATURE_HEADER, URL_PREFIX, TaskInstanceRef, WebhookGrant, sign
from tests.e2e.stack import BIN, Stack, loopback_env, wait_for

SECRET = "whs-bench-SECRET-5c0ffee5b3"
BIG_BODY = 150 * 1024 * 1024
CHUNK = 256 * 1024
#: Marks the bytes a hostile request tries to put in the log raw.
FORGED = ("\r2026-01-01 FORGED", "\u20282026-01-01 FORGED", "\x852026-01-01 FORGED", "\x1b[31mFORGED")


def grant(conn_id: str = "alta_bench", task_id: str = "run") -> WebhookGrant:
    ref = TaskInstanceRef(conn_id, "bench_dag", "manual__2026-01-01T00:00:00+00:00", task_id)
    return WebhookGrant(ref, 1, int(time.time()) + 3600)


class Target:
    """The API server: its port, its process tree, its log."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.port = stack.api_port
        self.log = stack.home / "service-api-server.log"

    def rss_mb(self) -> float:
        root = psutil.Process(self.stack.procs["api-server"].pid)
        total = 0
        for proc in [root, *root.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total / 2**20

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def post(self, path: str, body: bytes = b"{}", headers: dict[str, str] | None = None) -> int:
        conn = self.connect()
        try:
            conn.request("POST", URL_PREFIX + path, body=body, headers=headers or {})
            return conn.getresponse().status
        finally:
            conn.close()


def start(home: Path) -> Stack:
    stack = Stack(home)
    dags = home / "dags"
    dags.mkdir(parents=True)
    stack.env = loopback_env(home, dags, stack.api_port)

    def conn(conn_type: str, **extra: str) -> str:
        return json.dumps({"conn_type": conn_type, "host": "http://127.0.0.1:9", "password": "k", "extra": extra})

    stack.env.update(
        AIRFLOW_CONN_ALTA_BENCH=conn("alta", webhook_secret=SECRET),
        AIRFLOW_CONN_ALTA_NOSECRET=conn("alta"),
        AIRFLOW_CONN_HTTP_BENCH=conn("http", webhook_secret=SECRET),
    )
    stack.airflow("db", "migrate")
    stack.spawn("api-server", [str(BIN / "airflow"), "api-server"])
    target = Target(stack)
    wait_for(lambda: _answers(target), 120, "the API server")
    return stack


def _answers(target: Target) -> bool:
    try:
        return target.post(grant().path()) == 401
    except OSError:
        return False


def big_bodies(target: Target, chunked: bool) -> dict[str, Any]:
    """Three 150 MB bodies with a valid token at once; the tree's RSS sampled every 20 ms meanwhile."""
    idle = target.rss_mb()
    peak = idle
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, target.rss_mb())
            time.sleep(0.02)

    def send() -> tuple[int, float]:
        started = time.monotonic()
        conn = target.connect()
        path = URL_PREFIX + grant().path()
        conn.putrequest("POST", path)
        conn.putheader(SIGNATURE_HEADER, sign(SECRET, grant()))
        conn.putheader("Transfer-Encoding" if chunked else "Content-Length", "chunked" if chunked else str(BIG_BODY))
        conn.endheaders()
        piece = b"x" * CHUNK
        framed = b"%x\r\n%s\r\n" % (CHUNK, piece) if chunked else piece
        try:
            for _ in range(BIG_BODY // CHUNK):
                conn.send(framed)
            if chunked:
                conn.send(b"0\r\n\r\n")
        except OSError:
            pass  # refused and closed mid-body
        try:
            status = conn.getresponse().status
        except OSError:
            status = 0
        conn.close()
        return status, time.monotonic() - started

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: send(), range(3)))
    done.set()
    sampler.join()
    return {"idle": idle, "peak": peak, "answers": answers}


def lying_length(target: Target) -> tuple[int, float]:
    """``Content-Length: 10 GB`` and 1 MB sent: how long until the answer."""
    started = time.monotonic()
    conn = target.connect()
    conn.putrequest("POST", URL_PREFIX + grant().path())
    conn.putheader(SIGNATURE_HEADER, sign(SECRET, grant()))
    conn.putheader("Content-Length", str(10 * 1024**3))
    conn.endheaders()
    with contextlib.suppress(OSError):
        conn.send(b"x" * 1024 * 1024)
    status = conn.getresponse().status
    conn.close()
    return status, time.monotonic() - started


def stalled_body(target: Target) -> tuple[int, float]:
    """A declared 1,000-byte body of which 10 bytes arrive: how long until the answer."""
    started = time.monotonic()
    conn = target.connect()
    conn.putrequest("POST", URL_PREFIX + grant().path())
    conn.putheader(SIGNATURE_HEADER, sign(SECRET, grant()))
    conn.putheader("Content-Length", "1000")
    conn.endheaders()
    conn.send(b'{"workflow')
    status = conn.getresponse().status
    conn.close()
    return status, time.monotonic() - started


def hostile_requests(count: int) -> list[tuple[str, dict[str, str]]]:
    """Unauthenticated requests an attacker may send freely: forged log lines, 60 KB ids, made-up ids."""
    requests = []
    for i in range(count):
        kind = i % 4
        if kind == 0:
            path = grant(task_id="t" + FORGED[i % len(FORGED)]).path()
        elif kind == 1:
            path = grant(task_id="t" * 60_000).path()
        elif kind == 2:
            path = grant(conn_id=f"made_up_{i % 10}").path()
        else:
            path = grant().path()
        requests.append((path, {SIGNATURE_HEADER: "sha256=" + "0" * 64}))
    return requests


def log_volume(target: Target) -> dict[str, Any]:
    before = target.log.stat().st_size
    answers = [target.post(path, headers=headers) for path, headers in hostile_requests(1000)]
    time.sleep(1)  # let the server flush
    added = target.log.read_bytes()[before:].decode("utf-8", "replace")
    raw = sum(added.count(mark) for mark in FORGED)
    lines = added.splitlines(keepends=True)
    access = sum(len(line.encode()) for line in lines if "[http.access]" in line)
    ours = sum(len(line.encode()) for line in lines if "airflow_provider_alta" in line)
    return {
        "bytes": len(added.encode()),
        "access": access,
        "ours": ours,
        "answers": sorted(set(answers)),
        "raw_marks": raw,
    }


def refusal_rate(target: Target, seconds: float = 5.0, threads: int = 4) -> float:
    requests = hostile_requests(400)
    deadline = time.monotonic() + seconds
    counts = [0] * threads

    def hammer(n: int) -> None:
        i = n
        while time.monotonic() < deadline:
            path, headers = requests[i % len(requests)]
            target.post(path, headers=headers)
            counts[n] += 1
            i += threads

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(hammer, range(threads)))
    return sum(counts) / seconds


def refusal_latency(target: Target, conn_ids: dict[str, str], rounds: int = 300) -> dict[str, float]:
    """Median time to a 401 per kind of connection id, the kinds interleaved so load falls on all alike."""
    headers = {SIGNATURE_HEADER: "sha256=" + "0" * 64}
    paths = {name: grant(conn_id=conn_id).path() for name, conn_id in conn_ids.items()}
    for path in paths.values():
        target.post(path, headers=headers)  # warm the cache, as it is at steady state
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, path in paths.items():
            started = time.perf_counter()
            target.post(path, headers=headers)
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(taken) * 1000 for name, taken in times.items()}


def main() -> list[str]:
    stack = start(Path(tempfile.mkdtemp(prefix="alta-bench-attacks-")))
    try:
        target = Target(stack)
        streamed = big_bodies(target, chunked=True)
        declared = big_bodies(target, chunked=False)
        lying = lying_length(target)
        stalled = stalled_body(target)
        logs = log_volume(target)
        rate = refusal_rate(target)
        latency = refusal_latency(
            target,
            {
                "unknown": "no_such_conn",
                "no secret": "alta_nosecret",
                "with secret": "alta_bench",
                "http type with secret": "http_bench",
            },
        )
    finally:
        stack.stop()
    lines = [
        "## Webhook receiver under attack (a real airflow api-server, 127.0.0.1)",
        "",
        "| attack | measured |",
        "|---|---|",
    ]
    for name, run in (("3 x 150 MB chunked, valid token", streamed), ("3 x 150 MB Content-Length", declared)):
        answers = ", ".join(f"{status} in {took:.1f} s" for status, took in run["answers"])
        lines.append(
            f"| {name} | RSS idle {run['idle']:.0f} MB, peak {run['peak']:.0f} MB "
            f"(+{run['peak'] - run['idle']:.1f} MB); answers {answers} |"
        )
    lines += [
        f"| Content-Length 10 GB, 1 MB sent | {lying[0]} in {lying[1]:.2f} s |",
        f"| 1,000-byte body, 10 bytes sent, then silence | {stalled[0]} in {stalled[1]:.1f} s |",
        f"| 1,000 unauthenticated hostile requests | {logs['bytes']:,} bytes of log in all: the receiver's "
        f"{logs['ours']:,}, Airflow's access log {logs['access']:,} (one line a request); answers "
        f"{logs['answers']}; forged lines written raw: {logs['raw_marks']} |",
        f"| refused requests per second (4 clients, a connection each) | {rate:.0f} |",
        "| median refusal latency by connection id | "
        + ", ".join(f"{name} {ms:.2f} ms" for name, ms in latency.items())
        + " |",
    ]
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
