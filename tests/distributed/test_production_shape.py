"""The provider on a production-shape Airflow: PostgreSQL, CeleryExecutor on Redis, two triggerers, two workers.

The scenarios run in this order on one stack (each leaves it whole for the next): volume with a triggerer
killed, a worker killed, webhooks through an API-server restart, a scheduler restart, one rate-limited key shared
by every process, and last the search for secrets in every log, the database and the broker.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
import urllib.parse
from collections import Counter
from typing import Any

import pytest

from airflow_provider_alta._webhook.contract import grant_from_path, sign
from airflow_provider_alta.testing.emulator import key_id
from tests.distributed.conftest import (
    BUDGET_KEY,
    BUDGET_LIMIT,
    BUDGET_USED_BEFORE,
    DIST_SECRETS,
    DIST_WEBHOOK_SECRET,
    LOSS_KEY,
    RESTART_KEY,
    SYNC_KEY,
    VOLUME_KEY,
    WEBHOOK_RUN_SECONDS,
    WEBHOOKS_KEY,
)
from tests.distributed.figures import FIGURES
from tests.e2e.stack import PG_HOST, PG_PORT, PG_USER, SECRETS, Stack, redis_client, redis_keys, wait_for

LOG_PATH = re.compile(
    r"Executing workload in Celery: .*?log_path='dag_id=([^/]+)/run_id=[^/]+/task_id=([^/]+)/"
    r"(?:map_index=(-?\d+)/)?attempt=(\d+)\.log'"
)


pytestmark = pytest.mark.distributed

#: What one scenario hands a later one (the budget run overlaps the scenarios between them).
SHARED: dict[str, Any] = {}


def invokes(stack: Stack, key: str) -> int:
    return int(stack.emulator("/_emulator/stats")["invokes_by_key"].get(key_id(key), 0))


def executions(stack: Stack, dag_id: str) -> dict[str, list[tuple[str, int, int]]]:
    """What each Celery worker executed of a DAG: (task id, map index, try), one entry per task process."""
    found: dict[str, list[tuple[str, int, int]]] = {}
    for log in sorted(stack.home.glob("service-worker-*.log")):
        name = log.name.removeprefix("service-").removesuffix(".log")
        for dag, task, index, attempt in LOG_PATH.findall(log.read_text(errors="replace")):
            if dag == dag_id:
                found.setdefault(name, []).append((task, int(index or -1), int(attempt)))
    return found


#: Deferred runs each triggerer holds at the kill, at least.
MIN_HELD = 5


def held_triggers(stack: Stack) -> dict[int, int]:
    """Triggers per triggerer job id."""
    rows = stack.sql("SELECT triggerer_id, count(*) FROM trigger WHERE triggerer_id IS NOT NULL GROUP BY 1")
    return {int(job): int(count) for job, count in rows}


def states(stack: Stack, dag_id: str, run_id: str) -> Counter[str]:
    return Counter(str(ti["state"]) for ti in stack.task_instances(dag_id, run_id))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@pytest.fixture(scope="module")
def stack(dist_stack: Stack) -> Stack:
    return dist_stack


def test_volume_across_workers_and_a_triggerer_killed(stack):
    volume = stack.trigger("dist_volume")
    sync = stack.trigger("dist_sync")
    names = list(stack.triggerer_ids)
    held: dict[int, int] = {}

    def spread() -> bool:
        # Airflow hands new triggers to whichever triggerer asks first, and the busier one asks more often (it
        # turns its loop for every request of its triggers), so the split is uneven; both must hold some.
        held.clear()
        held.update(held_triggers(stack))
        return sum(held.values()) >= 20 and all(held.get(stack.triggerer_ids[n], 0) >= MIN_HELD for n in names)

    wait_for(spread, 300, f"both triggerers to hold {MIN_HELD} deferred runs or more")
    victim = max(names, key=lambda n: held.get(stack.triggerer_ids[n], 0))
    dead_id = stack.triggerer_ids[victim]
    orphans = {row[0] for row in stack.sql("SELECT id FROM trigger WHERE triggerer_id = %s", dead_id)}
    stack.kill(victim, signal.SIGKILL)
    killed_at = time.time()
    wait_for(lambda: held_triggers(stack).get(dead_id, 0) == 0, 180, "the survivor to adopt the triggers")
    adopted_after = time.time() - killed_at
    stack.start_triggerer(victim)  # back to two for the next scenarios

    assert stack.wait_dag_run("dist_volume", volume, timeout=600) == "success"
    assert stack.wait_dag_run("dist_sync", sync, timeout=300) == "success"
    tis = stack.task_instances("dist_volume", volume)
    assert len(tis) == 100 and all(ti["try_number"] == 1 for ti in tis)  # nothing failed, nothing retried
    assert invokes(stack, VOLUME_KEY) == 100 and invokes(stack, SYNC_KEY) == 20  # one paid run per task
    runs = stack.alta_runs("dist_volume", volume)
    delays = [run["delay"] for run in runs]
    outage = [run["delay"] for run in runs if killed_at <= run["ends_at"] <= killed_at + adopted_after]
    per_worker = {name: len(done) for name, done in executions(stack, "dist_volume").items()}
    sync_workers = {name: len(done) for name, done in executions(stack, "dist_sync").items()}
    assert set(per_worker) == set(sync_workers) == set(stack.worker_names), (per_worker, sync_workers)
    trigger_logs = Counter(
        path.name.rsplit(".trigger.", 1)[1].removesuffix(".log")
        for path in stack.home.glob("logs/dag_id=dist_volume/**/*.trigger.*.log")
    )
    FIGURES.update(
        {
            "volume: paid runs for 100 deferred + 20 sync/run_async tasks": invokes(stack, VOLUME_KEY)
            + invokes(stack, SYNC_KEY),
            "volume: deferred triggers held at the kill (job id: count)": dict(held),
            "volume: trigger logs per triggerer job id": dict(trigger_logs),
            "volume: task processes per worker (dist_volume / dist_sync)": [per_worker, sync_workers],
            "failover: triggers orphaned by the kill": len(orphans),
            "failover: adoption after kill -9 (s)": round(adopted_after, 1),
            "failover: run end -> task success, worst / p95 / p50 (s)": [
                round(max(delays), 1),
                round(percentile(delays, 0.95), 1),
                round(percentile(delays, 0.5), 1),
            ],
            "failover: worst delay of runs that ended during the outage (s)": round(max(outage), 1) if outage else None,
        }
    )
    assert len(orphans) >= 10
    assert min(held.values()) >= MIN_HELD  # spread over both
    assert len(trigger_logs) >= 2
    # The adoption waits for the dead triggerer's heartbeat to age past the 30 s health threshold.
    assert adopted_after <= 90
    assert max(delays) <= adopted_after + 60, sorted(delays)[-5:]


def worker_of(stack: Stack, dag_id: str, run_id: str, task_id: str) -> str | None:
    pid = stack.task_instance(dag_id, run_id, task_id).get("pid")
    return stack.service_of(int(pid), stack.worker_names) if pid else None


def test_a_lost_worker_s_retry_reattaches_on_the_other_worker(stack):
    run_id = stack.trigger("dist_worker_loss")

    seen: dict[str, Any] = {}

    def both_waiting() -> bool:
        for task in ("sync", "run_async"):
            ti = stack.task_instance("dist_worker_loss", run_id, task)
            seen[task] = (ti["state"], ti.get("pid"), worker_of(stack, "dist_worker_loss", run_id, task))
        seen["invokes"] = invokes(stack, LOSS_KEY)
        return seen["invokes"] == 2 and all(seen[t][0] == "running" and seen[t][2] for t in ("sync", "run_async"))

    try:
        wait_for(both_waiting, 120, "both tasks to wait on their runs")
    except TimeoutError as err:
        raise AssertionError(f"{err}; last seen (state, pid, worker): {seen}") from None
    time.sleep(2)  # the run_async task has kept its run id by now (it is stored before the first poll)
    lost = {worker_of(stack, "dist_worker_loss", run_id, task) for task in ("sync", "run_async")}
    for name in lost:
        assert name is not None
        stack.kill(name, signal.SIGKILL)  # the worker and every task process it forked
    replacements = []
    if len(lost) == len(stack.worker_names):  # both were hit: a fresh worker takes the retries
        replacements.append("worker-3")
        stack.start_worker("worker-3")
    # Trigger the budget scenario now, so its long waits overlap the next scenarios.
    SHARED["budget triggered at"] = time.time()
    SHARED["budget run"] = stack.trigger("dist_budget")

    assert stack.wait_dag_run("dist_worker_loss", run_id, timeout=300) == "failed"  # the sync task, by design
    reattached = stack.task_instance("dist_worker_loss", run_id, "run_async")
    refused = stack.task_instance("dist_worker_loss", run_id, "sync")
    assert reattached["state"] == "success" and reattached["try_number"] == 2
    assert refused["state"] == "failed" and refused["try_number"] == 2
    assert invokes(stack, LOSS_KEY) == 2  # one paid run each: the retries started none
    retried_on = {
        name
        for name, done in executions(stack, "dist_worker_loss").items()
        for _task, _index, attempt in done
        if attempt == 2
    }
    assert retried_on and not retried_on & lost, (retried_on, lost)
    sync_log = (stack.home / "logs/dag_id=dist_worker_loss").rglob("task_id=sync/attempt=2.log")
    text = "".join(path.read_text() for path in sync_log)
    assert "lost during its synchronous invoke" in text and "run_async=True or deferrable=True" in text
    async_log = "".join(
        p.read_text() for p in stack.home.glob("logs/dag_id=dist_worker_loss/**/task_id=run_async/attempt=2.log")
    )
    assert "Reattaching to Alta" in async_log
    FIGURES["worker loss: killed workers"] = sorted(n for n in lost if n)
    FIGURES["worker loss: retries ran on"] = sorted(retried_on)
    FIGURES["worker loss: paid runs for the two tasks"] = invokes(stack, LOSS_KEY)
    for name in lost:
        if name:
            stack.start_worker(name)  # two workers again (plus the replacement, if any)
    del replacements


def test_webhooks_through_an_api_server_restart(stack):
    run_id = stack.trigger("dist_webhooks")
    # Every run started (each task defers right after its invoke); then the API server goes down a second before the
    # next run ends, and the webhooks of the runs that end while it is away are lost.
    wait_for(lambda: invokes(stack, WEBHOOKS_KEY) == 50, 300, "the 50 webhook runs to start")
    time.sleep(3)
    key = key_id(WEBHOOKS_KEY)
    stats = stack.emulator("/_emulator/stats")["request_log"]
    started = sorted(e["at"] for e in stats if e["key"] == key and e["endpoint"] == "invoke")
    next_end = min(at + WEBHOOK_RUN_SECONDS for at in started if at + WEBHOOK_RUN_SECONDS > time.time() + 2)
    time.sleep(max(0.0, next_end - time.time() - 1))
    stack.kill("api-server", signal.SIGKILL)
    down_at = time.time()
    time.sleep(3)
    stack.start_api_server()
    wait_for(stack._healthy, 180, "the API server back")
    up_after = time.time() - down_at
    assert stack.wait_dag_run("dist_webhooks", run_id, timeout=400) == "success"
    runs = stack.alta_runs("dist_webhooks", run_id)
    ids = {run["workflow_run_id"] for run in runs}
    deliveries = {
        d["workflowRunId"]: d
        for d in stack.emulator("/_emulator/stats")["webhook_deliveries"]
        if d["workflowRunId"] in ids
    }
    tries = {ti["map_index"]: ti["try_number"] for ti in stack.task_instances("dist_webhooks", run_id)}
    delivered = [run for run in runs if deliveries[run["workflow_run_id"]].get("status") == 200]
    missed = [run for run in runs if deliveries[run["workflow_run_id"]].get("status") != 200]
    assert len(runs) == 50 and invokes(stack, WEBHOOKS_KEY) == 50  # nothing lost, nothing paid twice
    assert missed, "the restart hit no webhook in flight"
    assert delivered, "no webhook was delivered at all"
    # The confirming query and nothing else, for every task the restart did not interrupt.
    woken = [run for run in delivered if tries[run["map_index"]] == 1]
    assert woken and all(run["queries"] == 1 for run in woken), [run["queries"] for run in woken]
    assert all(run["queries"] >= 1 for run in missed)  # the fallback poll found them
    noticed = [run["noticed"] for run in woken]
    FIGURES.update(
        {
            "webhooks: API server down (s)": round(up_after, 1),
            "webhooks: delivered / lost to the restart": [len(delivered), len(missed)],
            "webhooks: tasks the restart interrupted (retried, reattached)": sum(1 for t in tries.values() if t > 1),
            "webhooks: queries per delivered run": sorted({run["queries"] for run in delivered}),
            "webhooks: run end -> confirming query of delivered runs, p50 / p95 (s)": [
                round(percentile(noticed, 0.5), 2),
                round(percentile(noticed, 0.95), 2),
            ],
            "webhooks: worst run end -> task success of lost ones (s)": round(max(r["delay"] for r in missed), 1),
        }
    )
    # Delivered webhooks wake their task within seconds; a lost one waits for the fallback poll.
    assert percentile(noticed, 0.95) <= 10, sorted(noticed)


def xcom_run_ids(stack: Stack, dag_id: str, run_id: str) -> list[str]:
    ids = []
    for ti in stack.task_instances(dag_id, run_id):
        ids.append(stack.xcom(dag_id, run_id, ti["task_id"], "workflow_run_id", ti["map_index"]))
    return ids


def test_a_scheduler_restart_loses_nothing_and_runs_nothing_twice(stack):
    run_id = stack.trigger("dist_scheduler_restart")

    def mid_run() -> bool:
        now = states(stack, "dist_scheduler_restart", run_id)
        return now.get("deferred", 0) >= 3 and now.get("running", 0) >= 2

    wait_for(mid_run, 240, "tasks running and deferred")
    before = states(stack, "dist_scheduler_restart", run_id)
    stack.kill("scheduler", signal.SIGKILL)
    time.sleep(5)
    stack.start_scheduler()
    assert stack.wait_dag_run("dist_scheduler_restart", run_id, timeout=400) == "success"
    tis = stack.task_instances("dist_scheduler_restart", run_id)
    assert len(tis) == 12 and all(ti["try_number"] == 1 for ti in tis)
    assert invokes(stack, RESTART_KEY) == 12
    starts = Counter(
        (task, index) for done in executions(stack, "dist_scheduler_restart").values() for task, index, _ in done
    )
    # Every task started once (deferred ones end in the triggerer): none was started again by the new scheduler.
    assert all(starts[("deferred", i)] == 1 for i in range(8)) and all(starts[("in_worker", i)] == 1 for i in range(4))
    FIGURES["scheduler restart: states at the kill"] = dict(before)
    FIGURES["scheduler restart: paid runs for 12 tasks"] = invokes(stack, RESTART_KEY)


def test_one_rate_limited_key_shared_by_every_process(stack):
    run_id = SHARED["budget run"]
    assert stack.wait_dag_run("dist_budget", run_id, timeout=900) == "success"
    took = time.time() - SHARED["budget triggered at"]
    tis = stack.task_instances("dist_budget", run_id)
    assert len(tis) == 100 and all(ti["state"] == "success" for ti in tis)
    assert invokes(stack, BUDGET_KEY) == 100
    log = [e for e in stack.emulator("/_emulator/stats")["request_log"] if e["key"] == key_id(BUDGET_KEY)]
    statuses = Counter(str(e["status"]) for e in log)
    assert statuses.get("429", 0) == 0, statuses  # no answer told anyone to back off
    # The key's hour resets 300 s after this scenario's first request, with 600 requests left in it.
    resets_at = log[0]["at"] + 300
    first_window = [e for e in log if e["at"] < resets_at]
    assert len(first_window) <= BUDGET_LIMIT - BUDGET_USED_BEFORE
    task_logs = "".join(p.read_text(errors="replace") for p in stack.home.glob("logs/dag_id=dist_budget/**/*.log"))
    assert "RATE_LIMITED" not in task_logs and "AltaRateLimitError" not in task_logs
    deferred = [run for run in stack.alta_runs("dist_budget", run_id, "deferred")]
    in_worker = [run for run in stack.alta_runs("dist_budget", run_id, "in_worker")]
    FIGURES.update(
        {
            "budget: requests spent by 100 tasks (invokes + queries), before / after the hour's reset": [
                len(first_window),
                len(log) - len(first_window),
            ],
            "budget: answers by status": dict(statuses),
            "budget: queries per run, deferred (mean) / in a worker (mean)": [
                round(sum(r["queries"] for r in deferred) / len(deferred), 1),
                round(sum(r["queries"] for r in in_worker) / len(in_worker), 1),
            ],
            "budget: run end -> task success, worst deferred / worst in a worker (s)": [
                round(max(r["delay"] for r in deferred), 1),
                round(max(r["delay"] for r in in_worker), 1),
            ],
            "budget: trigger to last success (s)": round(took, 1),
        }
    )


def webhook_tokens(stack: Stack) -> list[str]:
    tokens = []
    for run in stack.request("GET", "/api/v2/dags/dist_webhooks/dagRuns")["dag_runs"]:
        for alta in stack.alta_runs("dist_webhooks", run["dag_run_id"]):
            for url in stack.emulator(f"/_emulator/runs/{alta['workflow_run_id']}")["webhook_urls"]:
                _, _, signed = urllib.parse.urlsplit(url).path.partition("/alta/webhook/v2/")
                grant = grant_from_path(*(urllib.parse.unquote(part) for part in signed.split("/")))
                if grant is not None:
                    tokens.append(sign(DIST_WEBHOOK_SECRET, grant))
    assert len(tokens) == 50
    return tokens


def test_no_secret_in_any_log_the_database_or_the_broker(stack):
    """Runs last: every file under AIRFLOW_HOME, a pg_dump of the metadata database, every Redis key of the stack."""
    secrets = [*SECRETS, *DIST_SECRETS, *webhook_tokens(stack)]
    files = [p for p in stack.home.rglob("*") if p.is_file() and p.name != "emulator.json"]  # the emulator's keys
    assert any("trigger" in p.name for p in files) and any(p.name.startswith("service-worker") for p in files)
    hits = [(str(p), s) for p in files for s in secrets if s.encode() in p.read_bytes()]
    dump = subprocess.run(
        ["pg_dump", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, "--data-only", stack.database],
        capture_output=True,
        check=True,
    ).stdout
    assert b"COPY public.xcom" in dump and b"COPY public.trigger" in dump and len(dump) > 100_000
    hits += [("pg_dump", s) for s in secrets if s.encode() in dump]
    client = redis_client()
    keys = redis_keys(stack.redis_prefix)
    broker = b"".join(key + (client.dump(key) or b"") for key in keys)
    hits += [("redis", s) for s in secrets if s.encode() in broker]
    FIGURES["secrets: distinct secrets searched"] = len(set(secrets))
    FIGURES["secrets: files, pg_dump bytes, Redis keys searched"] = [len(files), len(dump), len(keys)]
    FIGURES["secrets: occurrences found"] = len(hits)
    assert hits == []
