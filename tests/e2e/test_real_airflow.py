"""End to end on a real Airflow (LocalExecutor, SQLite, all on 127.0.0.1) against the emulator."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import sqlite3
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_alta._airflow.lineage import SCHEMA_URL
from airflow_provider_alta._airflow.triggerer_finish import OPENLINEAGE_REASON
from airflow_provider_alta._airflow.version_compat.task import callback_parse_deactivates_dags
from airflow_provider_alta._webhook.contract import (
    MAILBOX_KEY,
    SIGNATURE_HEADER,
    TaskInstanceRef,
    WebhookGrant,
    empty_mailbox,
    grant_from_path,
    sign,
)
from airflow_provider_alta.testing.client import EmulatorClient
from airflow_provider_alta.testing.emulator import key_id
from tests._airflow.test_lineage import facet_validator
from tests.e2e.stack import (
    ENRICH_KEY,
    FINISH_KEY,
    HOOKED,
    LINEAGE_DAG,
    LINEAGE_KEY,
    NOT_FOUND_KEY,
    RETRY_KEY,
    ROOT,
    SECRETS,
    SLOW_KEY,
    WEBHOOK_SECRET,
    WORKER_KEY,
    Shape,
    Stack,
    wait_for,
)

pytestmark = pytest.mark.e2e

EXAMPLES = {
    "alta_sync_invoke": "today_news",
    "alta_deferrable_etl": "summarise_news",
    "alta_async_sensor": "wait",
}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    home = Path(tempfile.mkdtemp(prefix="alta-e2e-airflow-"))
    # OpenLineage on, for the DAG LINEAGE_DAG alone (its own per-DAG switch): every other DAG runs as where it is off.
    stack = Stack(home, Shape(openlineage=True))
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def invokes(stack: Stack, key: str) -> int:
    return int(stack.emulator("/_emulator/stats")["invokes_by_key"].get(key_id(key), 0))


#: The scenarios whose runs disturb no other run (no process of the stack is restarted, no fault is injected for
#: every key, no figure is timed) and whose deferred tasks wait 12 s or more after deferring: they run side by side
#: with the examples, each test waiting on its own run. The retries that defer again moments before their run
#: ends run alone afterwards: a scheduler slowed by many tasks at once can fail a task whose trigger fires that
#: soon after its deferral, on a stale executor event (apache/airflow#71580; Airflow's bug, not the provider's).
SIDE_BY_SIDE = ("e2e_worker_loss", "e2e_end_in_triggerer", LINEAGE_DAG)


@pytest.fixture(scope="module")
def runs(stack: Stack) -> dict[str, str]:
    """The examples' runs and ``SIDE_BY_SIDE``'s, triggered together (after the triggerer restart's test, which
    kills the triggerer every deferred run waits in): run ids by DAG id."""
    # The sensor example first, alone: queued behind the synchronous examples' worker slots, its sensor would defer
    # only moments before the run ends, and a trigger that fires that soon can be failed by a stale executor event
    # (apache/airflow#71580, #72716; Airflow's bug, not the provider's).
    runs = {"alta_async_sensor": stack.trigger("alta_async_sensor")}
    wait_for(
        lambda: (
            stack.task_state("alta_async_sensor", runs["alta_async_sensor"], "wait")
            in ("deferred", "success", "failed")
        ),
        120,
        "the sensor to defer",
    )
    # The worker-loss scenario first (SIDE_BY_SIDE's first): its test kills the task while it waits on its run.
    for dag_id in (*SIDE_BY_SIDE, *EXAMPLES, "alta_mapped_fanout", "alta_batch_enrich"):
        if dag_id not in runs:
            runs[dag_id] = stack.trigger(dag_id)
    return runs


def test_triggerer_restart_keeps_waiting_without_a_second_invoke(stack):
    run_id = stack.trigger("e2e_triggerer_restart")
    wait_for(lambda: stack.task_instance("e2e_triggerer_restart", run_id, "run")["state"] == "deferred", 90, "deferral")
    stack.kill("triggerer", signal.SIGKILL)
    stack.start_triggerer()
    assert stack.wait_dag_run("e2e_triggerer_restart", run_id, timeout=180) == "success"
    assert invokes(stack, SLOW_KEY) == 1


def test_worker_loss_retry_reattaches(stack, runs):
    run_id = runs["e2e_worker_loss"]

    def running_with_run_id() -> bool:
        ti = stack.task_instance("e2e_worker_loss", run_id, "run")
        if ti["state"] != "running" or not ti.get("pid"):
            return False
        try:
            stack.xcom("e2e_worker_loss", run_id, "run", "workflow_run_id")
        except OSError:
            return False
        return True

    wait_for(running_with_run_id, 90, "the task to wait on its run")
    # The worker is lost: the task process and the supervisor that heartbeats for it die together.
    task_pid = stack.task_instance("e2e_worker_loss", run_id, "run")["pid"]
    supervisor_pid = int(Path(f"/proc/{task_pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    for pid in (task_pid, supervisor_pid):
        os.kill(pid, signal.SIGKILL)
    assert stack.wait_dag_run("e2e_worker_loss", run_id, timeout=180) == "success"
    assert stack.task_instance("e2e_worker_loss", run_id, "run")["try_number"] == 2
    assert invokes(stack, WORKER_KEY) == 1
    assert durable_variables(stack, "e2e_worker_loss") == []  # removed once the task succeeded


def test_example_dags_succeed_with_the_emulators_output(stack, runs):
    runs = {dag_id: runs[dag_id] for dag_id in (*EXAMPLES, "alta_mapped_fanout", "alta_batch_enrich")}
    for dag_id, run_id in runs.items():
        assert stack.wait_dag_run(dag_id, run_id) == "success", dag_id
    for dag_id, task_id in EXAMPLES.items():
        run_id = runs[dag_id]
        alta_run = stack.xcom(dag_id, run_id, task_id, "workflow_run_id")
        produced = stack.emulator(f"/_emulator/runs/{alta_run}")["body"]["output"]
        assert stack.xcom(dag_id, run_id, task_id) == produced
    fanout = runs["alta_mapped_fanout"]
    for index in range(5):
        alta_run = stack.xcom("alta_mapped_fanout", fanout, "news_per_topic", "workflow_run_id", index)
        produced = stack.emulator(f"/_emulator/runs/{alta_run}")["body"]["output"]
        assert stack.xcom("alta_mapped_fanout", fanout, "news_per_topic", map_index=index) == produced
    sink = stack.emulator("/_emulator/stats")["sink"]
    assert any("Authorization" in hit["header_names"] for hit in sink)  # the webhook was delivered
    # The batch example: every product of its CSV enriched by one paid run and loaded into the table.
    with (ROOT / "dags_examples" / "data" / "products.csv").open() as data:
        products = sum(1 for _ in csv.DictReader(data))
    batch = runs["alta_batch_enrich"]
    manifest = stack.xcom("alta_batch_enrich", batch, "enrich")
    assert (manifest["total"], manifest["succeeded"], manifest["failed"]) == (products, products, 0)
    # One paid run per row (unpausing the DAG also starts its latest daily run, which pays for its own 20).
    texts = [Path(uri.removeprefix("file://")).read_text() for uri in manifest["results"]]
    rows = [json.loads(line) for text in texts for line in text.splitlines()]
    assert len(rows) == len({row["workflow_run_id"] for row in rows}) == products
    assert all(
        stack.emulator(f"/_emulator/runs/{row['workflow_run_id']}")["body"]["input"]["sku"] == row["key"]
        for row in rows
    )
    assert EmulatorClient(stack.emulator_url, ENRICH_KEY).key_stats()["distinct_inputs"] == products
    with sqlite3.connect(stack.home / "news.sqlite") as db:
        (loaded,) = db.execute("SELECT count(*) FROM product_enrichment WHERE run_id = ?", (batch,)).fetchone()
    assert loaded == stack.xcom("alta_batch_enrich", batch, "load") == products


def durable_variables(stack: Stack, dag_id: str | None = None) -> list[str]:
    """Run-id Variables left behind (before Airflow 3.3 the run id is kept in one while a task runs)."""
    variables = stack.request("GET", "/api/v2/variables?limit=1000")["variables"]
    about = f"Alta run of {dag_id}/" if dag_id else "Alta run of "
    return [v["key"] for v in variables if v["key"].startswith("alta_run_id.") and about in (v["description"] or "")]


def worker_starts(stack: Stack, dag_id: str, run_id: str, task_id: str) -> int:
    """How many times a worker started the task instance: each start asks the Execution API to run it."""
    ti_id = stack.task_instance(dag_id, run_id, task_id)["id"]
    log = (stack.home / "service-api-server.log").read_text(errors="replace")
    # A start the API server refused (the task instance was not queued any more) is not a start.
    # Airflow 3.3's access log: "path=/execution/task-instances/<id>/run query= status_code=200";
    # before: uvicorn's '"PATCH /execution/task-instances/<id>/run HTTP/1.1" 200 OK'.
    accepted = rf"/execution/task-instances/{ti_id}/run(?: query=\S* status_code=| HTTP/[\d.]+\" )2\d\d"
    return len(re.findall(accepted, log))


def test_deferred_task_ends_in_the_triggerer(stack, runs):
    dag_id = "e2e_end_in_triggerer"
    run_id = runs[dag_id]
    assert stack.wait_dag_run(dag_id, run_id, timeout=240) == "success"
    (ended,) = stack.alta_runs(dag_id, run_id, "run")
    # Airflow 3.0's DAG processor deactivates a file's DAGs after a task ended in the triggerer: every task resumes.
    in_triggerer = not callback_parse_deactivates_dags()
    # One worker execution (invoke, defer); the trigger ended the task. The task with outlets resumed on a worker.
    assert worker_starts(stack, dag_id, run_id, "run") == (1 if in_triggerer else 2)
    assert worker_starts(stack, dag_id, run_id, "with_outlets") == 2
    # Run end → task success (the figures, ending in the triggerer against resuming, are in bench/README.md).
    assert ended["delay"] < 30, ended
    assert invokes(stack, FINISH_KEY) == 2
    body = stack.emulator(f"/_emulator/runs/{ended['workflow_run_id']}")["body"]
    assert stack.xcom(dag_id, run_id, "run") == body["output"]
    pushed = {
        "workflow_run_id": ended["workflow_run_id"],
        "status": "SUCCEED",
        "total_cost": body["totalCost"],
        "total_tokens": body["totalTokens"],
        "workflow_execution_time_ms": body["workflowExecutionTime"],
    }
    for key, value in pushed.items():
        assert stack.xcom(dag_id, run_id, "run", key) == value, key
    assert stack.xcom(dag_id, run_id, "run", "alta_recent_execution_times_ms") == [body["workflowExecutionTime"]]
    # Pushed by the worker before deferring, as they were known from the invoke.
    assert stack.xcom(dag_id, run_id, "run", "workflow_name") == body["workflowName"]
    assert stack.xcom(dag_id, run_id, "run", "workflow_version") == body["workflowVersion"]
    # The downstream task read the XComs the trigger pushed, as it would a worker's.
    assert stack.xcom(dag_id, run_id, "read") == {"headline_length": len(body["output"]["headline"]), **pushed}
    events = stack.request("GET", f"/api/v2/assets/events?source_dag_id={dag_id}&source_run_id={run_id}")
    assert [event["source_task_id"] for event in events["asset_events"]] == ["with_outlets"]
    assert durable_variables(stack, dag_id) == []  # the trigger forgot the run id
    # A trigger that may end its task had the triggerer's supervisor build its in-process Execution API when it
    # started, not when its run ended (triggerer_warmup).
    trigger_logs = list((stack.home / "logs").rglob("*.log.trigger.*"))
    assert trigger_logs
    trigger_lines = [line for path in trigger_logs for line in path.read_text().splitlines()]
    assert any("supervisor is ready to end tasks here" in line for line in trigger_lines) is in_triggerer
    # The run's closing line is in the task's log: its trigger's when the trigger ended it, else its worker's.
    closing = re.compile(r"ended SUCCEED in [0-9.]+ s: cost \S+ credits, \S+ tokens")
    run_logs = (stack.home / "logs" / f"dag_id={dag_id}").rglob("task_id=run/attempt=1.log*")
    assert sum(len(closing.findall(path.read_text())) for path in run_logs) == 1
    assert not closing.search((stack.home / "service-triggerer.log").read_text(errors="replace"))
    assert not [line for line in trigger_lines if "could not be prepared for ending tasks" in line]
    task_log = task_log_of(stack, dag_id, "run")
    assert ("not in the triggerer: on this Airflow (3.0)" in task_log) is not in_triggerer
    # OpenLineage is on in this Airflow, off for this DAG: the task takes the fast path, and its logs say so.
    assert OPENLINEAGE_REASON not in task_log
    assert ("and ends the task when it succeeds" in task_log) is in_triggerer
    assert any(f"{dag_id}/{run_id}/run ends here, in the triggerer" in line for line in trigger_lines) is in_triggerer
    assert not [event for event in stack.lineage_events() if event["job"]["name"].startswith(dag_id)]
    marker = body["output"]["headline"]
    assert marker == "Finished-Solo-output-7f3a"
    logs = [*stack.home.glob("service-*.log"), *(stack.home / "logs").rglob("*")]
    # The trigger's log line of the event leaves the output out, whichever path the task takes.
    assert [str(p) for p in trigger_logs if marker.encode() in p.read_bytes()] == []
    if not in_triggerer:
        return  # 3.0: the task resumed with its output in the event (and Airflow's debug log of its start)
    # The output travelled in no event: it is in no log, and in the metadata database once (its XCom).
    assert [str(p) for p in logs if p.is_file() and marker.encode() in p.read_bytes()] == []
    database = sqlite3.connect(stack.home / "airflow.db")
    try:
        dump = "\n".join(database.iterdump())
    finally:
        database.close()
    assert dump.count(marker) == 1


def task_log_of(stack: Stack, dag_id: str, task_id: str) -> str:
    """The first try's log of a task (both of its executions, when it resumed on a worker)."""
    logs = (stack.home / "logs" / f"dag_id={dag_id}").rglob(f"task_id={task_id}/attempt=1.log")
    return "\n".join(path.read_text() for path in logs)


def test_openlineage_reports_a_deferred_task_from_start_to_complete(stack, runs):
    """Where OpenLineage is on, a deferred task finishes on a worker, where the listener runs: START, then COMPLETE
    with the alta_run facet (a task ended in the triggerer would have no COMPLETE event at all)."""
    run_id = runs[LINEAGE_DAG]
    assert stack.wait_dag_run(LINEAGE_DAG, run_id, timeout=240) == "success"
    alta_run = stack.xcom(LINEAGE_DAG, run_id, "run", "workflow_run_id")
    body = stack.emulator(f"/_emulator/runs/{alta_run}")["body"]
    assert invokes(stack, LINEAGE_KEY) == 1
    # The worker invoked and deferred; the trigger waited; a worker finished the task (on every release).
    assert worker_starts(stack, LINEAGE_DAG, run_id, "run") == 2
    task_log = task_log_of(stack, LINEAGE_DAG, "run")
    assert f"then the task resumes on a worker: {OPENLINEAGE_REASON}" in task_log  # the defer line
    assert f"The task resumes on a worker after its run, not in the triggerer: {OPENLINEAGE_REASON}" in task_log
    # The listener may still be writing when the task instance is marked done: wait for its COMPLETE event.
    job = f"{LINEAGE_DAG}.run"

    def task_events(kind: str) -> list[dict]:
        return [e for e in stack.lineage_events() if e["job"]["name"] == job and e["eventType"] == kind]

    wait_for(lambda: task_events("COMPLETE"), 60, "the task's OpenLineage COMPLETE event")
    (complete,) = task_events("COMPLETE")
    starts = task_events("START")
    assert starts, [(e["eventType"], e["job"]["name"]) for e in stack.lineage_events()]
    # One OpenLineage run for the task instance: the START of each execution and the COMPLETE share its id.
    assert {e["run"]["runId"] for e in starts} == {complete["run"]["runId"]}
    assert task_events("FAIL") == []
    facet = complete["run"]["facets"]["alta_run"]
    assert {k: v for k, v in facet.items() if k != "_producer"} == {
        "_schemaURL": SCHEMA_URL,
        "workflowName": body["workflowName"],
        "workflowVersion": body["workflowVersion"],
        "workflowRunId": alta_run,
        "status": "SUCCEED",
        "totalCost": body["totalCost"],
        "totalTokens": body["totalTokens"],
        "executionTimeMs": body["workflowExecutionTime"],
    }
    facet_validator().validate(facet)  # against the schema the package ships, where _schemaURL points
    assert all("alta_run" not in e["run"].get("facets", {}) for e in starts)
    # OpenLineage reports this DAG alone (its per-DAG switch): no other task's run started or completed with it on.
    # (The provider Airflow 3.0 resolves sends a FAIL event, whatever that switch, for a task the scheduler fails
    # itself, as it does e2e_worker_loss's lost first try: its listener's manual-state-change path checks nothing.)
    events = [e for e in stack.lineage_events() if e["eventType"] in ("START", "COMPLETE")]
    assert {e["job"]["name"].split(".")[0] for e in events} == {LINEAGE_DAG}


def test_deferred_retry_reattaches(stack):
    run_id = stack.trigger("e2e_deferred_retry")
    assert stack.wait_dag_run("e2e_deferred_retry", run_id, timeout=180) == "success"
    assert stack.task_instance("e2e_deferred_retry", run_id, "run")["try_number"] == 2  # try 1 timed out
    assert invokes(stack, RETRY_KEY) == 1
    assert durable_variables(stack, "e2e_deferred_retry") == []


def test_a_retry_after_a_404_while_deferred_reattaches(stack):
    """The trigger's first query answers 404: try 1 fails; try 2 starts afresh and reattaches to the same run."""
    run_id = stack.trigger("e2e_deferred_not_found")
    assert stack.wait_dag_run("e2e_deferred_not_found", run_id, timeout=180) == "success"
    assert stack.task_instance("e2e_deferred_not_found", run_id, "run")["try_number"] == 2
    assert invokes(stack, NOT_FOUND_KEY) == 1
    (alta_run,) = stack.alta_runs("e2e_deferred_not_found", run_id, "run")
    body = stack.emulator(f"/_emulator/runs/{alta_run['workflow_run_id']}")["body"]
    assert stack.xcom("e2e_deferred_not_found", run_id, "run") == body["output"]
    assert durable_variables(stack, "e2e_deferred_not_found") == []


def deliveries_for(stack: Stack, runs: list[dict]) -> list[dict]:
    ids = {run["workflow_run_id"] for run in runs}
    return [d for d in stack.emulator("/_emulator/stats")["webhook_deliveries"] if d["workflowRunId"] in ids]


def post_forged(stack: Stack, grant: WebhookGrant) -> int:
    body = json.dumps({"workflowRunId": "forged", "status": "SUCCEED", "output": {}}).encode()
    request = urllib.request.Request(
        f"{stack.api}/alta{grant.path()}", data=body, method="POST", headers={SIGNATURE_HEADER: "sha256=" + "0" * 64}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def test_webhook_wakes_deferred_runs_with_one_query_each(stack):
    runs = {dag_id: stack.trigger(dag_id) for dag_id in ("e2e_webhook", "e2e_polling")}
    target = TaskInstanceRef("alta_hooked", "e2e_webhook", runs["e2e_webhook"], "run", 0)
    wait_for(
        lambda: stack.task_instance("e2e_webhook", target.run_id, "run", 0)["state"] == "deferred", 120, "deferral"
    )
    forged = WebhookGrant(target, stack.task_instance("e2e_webhook", target.run_id, "run", 0)["try_number"], 2**31)
    assert post_forged(stack, forged) == 401  # the plugin is mounted and authenticates
    for dag_id, run_id in runs.items():
        assert stack.wait_dag_run(dag_id, run_id, timeout=300) == "success", dag_id
    hooked = stack.alta_runs("e2e_webhook", runs["e2e_webhook"])
    polled = stack.alta_runs("e2e_polling", runs["e2e_polling"])
    assert len(hooked) == len(polled) == 20
    assert [run["queries"] for run in hooked] == [1] * 20  # the confirming query; no fallback poll
    # Run end -> the confirming query (the trigger fires right after it): a silent fallback to polling would be
    # the 60 s fallback interval here.
    # The bounds leave room for SQLite's write lock on a loaded 2-core machine (20 deliveries land within a second)
    # and stay far below the fallback poll.
    noticed = sorted(run["noticed"] for run in hooked)
    assert noticed[9] <= 1.5, noticed  # median of 20
    assert noticed[18] <= 5.0, noticed  # p95 of 20
    # Polling pays for every look (a run can end before its trigger even starts: then one is enough).
    assert all(run["queries"] >= 1 for run in polled)
    assert sum(run["queries"] for run in polled) > 2 * sum(run["queries"] for run in hooked)
    assert all(run["task_end"] >= run["ends_at"] for run in hooked + polled)
    assert [d["status"] for d in deliveries_for(stack, hooked)] == [200] * 20
    for run in hooked:
        assert stack.xcom("e2e_webhook", runs["e2e_webhook"], "run", MAILBOX_KEY, run["map_index"])["status"] == (
            "SUCCEED"
        )
    # The triggerer read the 20 mailboxes batched, through the API server, and none on its own: its Execution API
    # channel is in-process (each read a line "GET http://in-process.invalid./xcoms/..." in its log).
    mailbox_path = f"/xcoms/e2e_webhook/{runs['e2e_webhook']}/run/{MAILBOX_KEY}"
    triggerer_log = (stack.home / "service-triggerer.log").read_text(errors="replace")
    assert triggerer_log.count(mailbox_path) == 0
    trigger_logs = [p.read_text(errors="replace") for p in (stack.home / "logs").rglob("*trigger*") if p.is_file()]
    assert not any("Could not read the webhook mailboxes" in log for log in [triggerer_log, *trigger_logs])
    api_log = (stack.home / "service-api-server.log").read_text(errors="replace").splitlines()
    # Uvicorn's access line ("POST /alta/mailboxes HTTP/1.1" 200) or Airflow 3.3's (method=POST path=/alta/mailboxes).
    batched = [line for line in api_log if "POST" in line and "/alta/mailboxes" in line]
    assert len(batched) >= 5 and all("200" in line for line in batched), batched[:5]
    # What the API server saw of these mailboxes otherwise: each task opening it and looking once before deferring
    # (per-task reads while waiting would be one a second per task, about 300 here).
    reads = [line for line in api_log if "GET" in line and f"/execution{mailbox_path}" in line]
    assert len(reads) <= 3 * 20, len(reads)


def test_webhook_faults_lost_duplicated_and_early(stack):
    runs = {dag_id: stack.trigger(dag_id) for dag_id in ("e2e_alta_hook_lost", "e2e_alta_hook_dup")}
    for dag_id, run_id in runs.items():
        assert stack.wait_dag_run(dag_id, run_id, timeout=300) == "success", dag_id
    (lost,) = stack.alta_runs("e2e_alta_hook_lost", runs["e2e_alta_hook_lost"])
    assert deliveries_for(stack, [lost]) == [] and lost["queries"] >= 1  # the fallback poll finished it
    assert stack.xcom("e2e_alta_hook_lost", runs["e2e_alta_hook_lost"], "run", MAILBOX_KEY) == empty_mailbox(
        "alta_hook_lost"
    )
    (dup,) = stack.alta_runs("e2e_alta_hook_dup", runs["e2e_alta_hook_dup"])
    assert [d["status"] for d in deliveries_for(stack, [dup])] == [200, 200] and dup["queries"] == 1
    # Early: the run ends and its webhook lands while the invoke's answer is held back 3 s.
    EmulatorClient(stack.emulator_url).inject("invoke", "delay_after", delay=3.0)
    early_run = stack.trigger("e2e_alta_hook_early")
    assert stack.wait_dag_run("e2e_alta_hook_early", early_run, timeout=300) == "success"
    (early,) = stack.alta_runs("e2e_alta_hook_early", early_run)
    (delivery,) = deliveries_for(stack, [early])
    assert delivery["status"] == 200 and delivery["at"] < early["ends_at"] + 2.5
    assert early["queries"] == 1


def test_no_import_errors(stack):
    errors = stack.request("GET", "/api/v2/importErrors")
    assert errors["total_entries"] == 0, errors
    # Nor did the DAG processor deactivate DAGs of a file that is there (Airflow 3.0 does after a callback-only
    # parse, which a task ended in the triggerer asks for: see version_compat.task.callback_parse_deactivates_dags).
    processor_log = (stack.home / "service-dag-processor.log").read_text(errors="replace")
    assert "is missing and will be deactivated" not in processor_log


def webhook_tokens(stack: Stack) -> list[str]:
    """The signature header each webhook task instance handed Alta: a secret too. Rebuilt from the receiver
    URL each run was given (the grant in it carries the issue-time expiry)."""
    tokens = []
    webhook_dags = ("e2e_webhook", *(f"e2e_{c}" for c in HOOKED if c.startswith("alta_hook_")))
    for dag_id in webhook_dags:
        for run in stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns")["dag_runs"]:
            for alta_run in stack.alta_runs(dag_id, run["dag_run_id"]):
                for url in stack.emulator(f"/_emulator/runs/{alta_run['workflow_run_id']}")["webhook_urls"]:
                    _, _, signed = urllib.parse.urlsplit(url).path.partition("/alta/webhook/v2/")
                    grant = grant_from_path(*(urllib.parse.unquote(part) for part in signed.split("/")))
                    if grant is not None:
                        tokens.append(sign(WEBHOOK_SECRET, grant))
    assert len(tokens) >= 23  # 20 mapped + lost + duplicated + early
    return tokens


def test_secrets_never_leak(stack):
    """Runs last: every file under AIRFLOW_HOME, every XCom and rendered field of every run."""
    secrets = (*SECRETS, *webhook_tokens(stack))
    hits = []
    files = [p for p in stack.home.rglob("*") if p.is_file() and p.name != "emulator.json"]  # the emulator's keys
    assert any(p.suffix == ".db" for p in files) and any("trigger" in p.name for p in files)
    for path in files:  # task logs, trigger logs, service logs, the metadata DB (trigger kwargs, XCom, ...)
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # SQLite's write-ahead log, checkpointed into the database meanwhile
            continue
        hits += [(str(path), s) for s in secrets if s.encode() in data]
    checked = 0
    for dag in stack.request("GET", "/api/v2/dags")["dags"]:
        for run in stack.request("GET", f"/api/v2/dags/{dag['dag_id']}/dagRuns")["dag_runs"]:
            for ti in stack.task_instances(dag["dag_id"], run["dag_run_id"]):
                blob = json.dumps(ti.get("rendered_fields"))
                entries = stack.request(
                    "GET",
                    f"/api/v2/dags/{dag['dag_id']}/dagRuns/{run['dag_run_id']}/taskInstances/{ti['task_id']}"
                    f"/xcomEntries?map_index={ti['map_index']}",
                )["xcom_entries"]
                for entry in entries:
                    blob += json.dumps(
                        stack.xcom(dag["dag_id"], run["dag_run_id"], ti["task_id"], entry["key"], ti["map_index"])
                    )
                hits += [(f"{dag['dag_id']}/{ti['task_id']}", s) for s in secrets if s in blob]
                checked += 1
    assert checked >= 10
    assert hits == []
    assert durable_variables(stack) == []  # every task succeeded or saw its run fail: nothing left behind
    start = stack.request("GET", "/api/v2/dags/alta_async_sensor/dagRuns")["dag_runs"][0]["dag_run_id"]
    rendered = stack.task_instance("alta_async_sensor", start, "start")["rendered_fields"]["webhooks"]
    assert rendered[0]["headers"]["Authorization"] == "***"  # masked, not merely absent
