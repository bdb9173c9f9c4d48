"""A real Airflow on 127.0.0.1: emulator, api-server, scheduler, dag-processor, triggerer(s), and workers.

Two shapes, one module: ``local`` (SQLite, LocalExecutor, one triggerer) and ``distributed`` (a fresh PostgreSQL
database, CeleryExecutor on Redis, two triggerers and two Celery workers), the way teams run Airflow at volume.
The distributed shape makes its own uniquely named database and Redis key prefix, and removes both at the end:
PostgreSQL and Redis are shared by everything on the machine.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

API_KEY = "sk-e2e-SECRET-d41f88a0c7"
SLOW_KEY = "sk-e2e-SLOW-SECRET-93b2"
WORKER_KEY = "sk-e2e-WORKER-SECRET-5e1c"
RETRY_KEY = "sk-e2e-RETRY-SECRET-8a2f"
#: The key whose runs answer their first query 404: a deferred task's first try fails, its retry reattaches.
NOT_FOUND_KEY = "sk-e2e-NOTFOUND-SECRET-4c6e"
WEBHOOK_TOKEN = "whk-e2e-SECRET-0b7d55"
#: Keys of the webhook wake-up DAGs, by connection id, with their workflows' settings.
HOOKED = {
    "alta_hooked": ("sk-e2e-HOOKED-SECRET-11aa", {"duration": 15.0}),
    "alta_polled": ("sk-e2e-POLLED-SECRET-22bb", {"duration": 15.0}),
    "alta_hook_lost": ("sk-e2e-LOST-SECRET-33cc", {"duration": 12.0, "webhook_copies": 0}),
    "alta_hook_dup": ("sk-e2e-DUP-SECRET-44dd", {"duration": 12.0, "webhook_copies": 2}),
    "alta_hook_early": ("sk-e2e-EARLY-SECRET-55ee", {"duration": 0.3}),
}
WEBHOOK_SECRET = "whs-e2e-SECRET-6f0e93c1d2"
#: The key of the DAG whose deferred task ends in the triggerer; its output's headline names the run's topic.
FINISH_KEY = "sk-e2e-FINISH-SECRET-66ff"
FINISH_WORKFLOW = {"duration": 12.0, "output": {"headline": "Finished-${topic}-output-7f3a", "items": [1, 2, 3]}}
#: The key of the example ``alta_batch_enrich`` (connection ``alta_enrich``): a product-enrichment workflow.
ENRICH_KEY = "sk-e2e-ENRICH-SECRET-88bb"
ENRICH_WORKFLOW: dict[str, Any] = {
    "name": "productEnrichment",
    "duration": 4.0,
    "input_schema": {
        "type": "object",
        "required": ["sku", "name", "category"],
        "properties": {k: {"type": "string", "minLength": 1} for k in ("sku", "name", "category")},
        "additionalProperties": False,
    },
    "output": {
        "description": "${name}: built for the outdoors, tested in every season.",
        "keywords": ["${category}", "outdoor", "${sku}"],
    },
}
#: The key of the DAG OpenLineage reports (on a stack with ``Shape.openlineage``).
LINEAGE_KEY = "sk-e2e-LINEAGE-SECRET-77aa"
#: The one DAG OpenLineage reports on such a stack; every other DAG runs as where OpenLineage is off.
LINEAGE_DAG = "e2e_lineage"
SECRETS = (
    API_KEY,
    SLOW_KEY,
    WORKER_KEY,
    RETRY_KEY,
    NOT_FOUND_KEY,
    FINISH_KEY,
    LINEAGE_KEY,
    ENRICH_KEY,
    WEBHOOK_TOKEN,
    WEBHOOK_SECRET,
    *(key for key, _ in HOOKED.values()),
)


def loopback_env(home: Path, dags: Path, api_port: int) -> dict[str, str]:
    """This process' environment without its Airflow settings, plus an Airflow home on SQLite whose API server
    listens on 127.0.0.1 only and mounts the Alta webhook receiver."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ALTA_", "OPENLINEAGE"))}
    api = f"http://127.0.0.1:{api_port}"
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(api_port),
        AIRFLOW__API__BASE_URL=api,
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__ALTA__WEBHOOK_ENABLED="True",
        AIRFLOW__ALTA__WEBHOOK_BASE_URL=api,
    )
    return env


#: OpenLineage off, explicitly (the provider is installed with the tests): tasks end where principle 9 lets them.
OPENLINEAGE_OFF = {"AIRFLOW__OPENLINEAGE__DISABLED": "True"}


def openlineage_env(events: Path) -> dict[str, str]:
    """OpenLineage on, as a deployment turns it on (a transport: its file transport, writing to ``events``), and
    reporting ``LINEAGE_DAG`` only, by the OpenLineage provider's own per-DAG switch: ``[openlineage]
    emission_policy`` where the provider has it (2.19+, which Airflow 3.3 resolves), ``selective_enable`` with the
    DAG's ``enable_lineage()`` before (the provider Airflow 3.0 resolves). Every other DAG runs as it does where
    OpenLineage is off."""
    env = {
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(events), "append": True}),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "alta-e2e",
    }
    if importlib.util.find_spec("airflow.providers.openlineage.utils.emission_policy") is not None:
        policy = [
            {"scope": {}, "controls": {"emit": False}},
            {"scope": {"dag_id": LINEAGE_DAG}, "controls": {"emit": True}},
        ]
        env["AIRFLOW__OPENLINEAGE__EMISSION_POLICY"] = json.dumps(policy)
    else:
        env["AIRFLOW__OPENLINEAGE__SELECTIVE_ENABLE"] = "True"
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: Where the distributed shape finds its services (the machine's own PostgreSQL and Redis).
PG_HOST, PG_USER = "127.0.0.1", "postgres"
PG_PORT = int(os.environ.get("ALTA_TESTS_PG_PORT", "5432"))
REDIS_HOST = "127.0.0.1"
REDIS_PORT = int(os.environ.get("ALTA_TESTS_REDIS_PORT", "6379"))


@dataclass(frozen=True)
class Shape:
    """Which Airflow the stack runs."""

    distributed: bool = False
    #: The metadata database on PostgreSQL (the distributed shape always is) instead of SQLite.
    postgres: bool = False
    triggerers: int = 1
    workers: int = 0
    #: Task slots: the LocalExecutor's parallelism, or each Celery worker's concurrency.
    slots: int = 4
    #: DAG files from ``tests/e2e/dags`` (the example DAGs are always there).
    dag_files: tuple[str, ...] = ("e2e_dags.py",)
    #: Emulator workflows by API key, on top of the local shape's.
    workflows: tuple[tuple[str, dict[str, Any]], ...] = ()
    #: Extra connections: (conn id, API key, extras).
    connections: tuple[tuple[str, str, dict[str, Any]], ...] = ()
    #: OpenLineage on, with its file transport (``Stack.lineage_file``), for ``LINEAGE_DAG`` alone; off otherwise.
    openlineage: bool = False
    #: Extra environment of every Airflow process, applied last (e.g. ``AIRFLOW__CORE__PARALLELISM``).
    env: tuple[tuple[str, str], ...] = ()


LOCAL = Shape()


class Stack:
    def __init__(self, home: Path, shape: Shape = LOCAL) -> None:
        self.home = home
        self.shape = shape
        tag = uuid.uuid4().hex[:10]
        #: The distributed shape's own database and Redis key prefix.
        self.database = f"alta_e2e_{tag}"
        self.redis_prefix = f"alta-e2e-{tag}:"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        #: The distributed shape's triggerers by name: their job ids (the trigger table's ``triggerer_id``).
        self.triggerer_ids: dict[str, int] = {}
        self.api_port = free_port()
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.token = ""
        self.emulator_url = ""
        self.env: dict[str, str] = {}
        #: Where OpenLineage's file transport writes its events, one JSON document a line (``Shape.openlineage``).
        self.lineage_file = home / "openlineage-events.jsonl"

    # -- processes -----------------------------------------------------------
    def spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.home / f"service-{name}.log", "ab")  # noqa: SIM115 - kept open for the process' life
        proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def kill(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Stop a service; ``SIGKILL`` takes every process it started with it (task processes run in process groups
        of their own), as when its machine is lost."""
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        if sig == signal.SIGKILL:
            for pid in descendants(proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def start_triggerer(self, name: str = "triggerer") -> None:
        known = self._triggerer_jobs() if self.shape.distributed else set()
        self.spawn(name, [str(BIN / "airflow"), "triggerer", "--skip-serve-logs"])
        if self.shape.distributed:
            # One at a time, so each triggerer's job id (what the trigger table names) is known.
            wait_for(lambda: self._triggerer_jobs() - known, 180, f"{name} to register")
            self.triggerer_ids[name] = max(self._triggerer_jobs() - known)

    def _triggerer_jobs(self) -> set[int]:
        return {row[0] for row in self.sql("SELECT id FROM job WHERE job_type = 'TriggererJob'")}

    def start_worker(self, name: str) -> None:
        """A Celery worker (its own log server off: several share this host)."""
        args = ["celery", "worker", "--skip-serve-logs", "--concurrency", str(self.shape.slots)]
        self.spawn(name, [str(BIN / "airflow"), *args, "--celery-hostname", f"{name}@%h"])

    def start_api_server(self) -> None:
        self.spawn("api-server", [str(BIN / "airflow"), "api-server"])

    def start_scheduler(self) -> None:
        self.spawn("scheduler", [str(BIN / "airflow"), "scheduler", "--skip-serve-logs"])

    @property
    def triggerer_names(self) -> list[str]:
        return (
            ["triggerer"]
            if self.shape.triggerers == 1
            else [f"triggerer-{i + 1}" for i in range(self.shape.triggerers)]
        )

    @property
    def worker_names(self) -> list[str]:
        return [f"worker-{i + 1}" for i in range(self.shape.workers)]

    @property
    def on_postgres(self) -> bool:
        return self.shape.distributed or self.shape.postgres

    def _distributed_env(self) -> dict[str, str]:
        """PostgreSQL for the metadata and Celery's results, Redis (under this stack's key prefix) as the broker."""
        return {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.database}",
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": self.redis_prefix,
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "21600",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.shape.slots),
            "AIRFLOW__CORE__PARALLELISM": str(2 * self.shape.slots * max(1, self.shape.workers)),
            # Airflow's default: a busy triggerer's heartbeat can lag several seconds behind on a loaded machine,
            # and a shorter threshold makes the two triggerers take each other's triggers back and forth.
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "30",
            # Task processes ride out an API-server restart (about 15 s here) instead of failing after 5 tries, and
            # the scheduler does not take the heartbeats they miss meanwhile for a lost worker.
            "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "10",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "45",
        }

    def start(self) -> None:
        dags = self.home / "dags"
        dags.mkdir(parents=True)
        sources = [*(ROOT / "dags_examples").glob("*.py"), *(ROOT / "tests/e2e/dags" / f for f in self.shape.dag_files)]
        for source in sources:
            shutil.copy(source, dags / source.name)
        shutil.copytree(ROOT / "dags_examples" / "data", dags / "data")  # the examples' input files
        config = {
            "workflows": {
                # Runs outlast the scheduler's handling of a deferral (apache/airflow#71580).
                API_KEY: {"duration": 12.0},
                SLOW_KEY: {"duration": 25.0},
                WORKER_KEY: {"duration": 15.0},
                RETRY_KEY: {"duration": 12.0},
                NOT_FOUND_KEY: {"duration": 12.0, "queries_not_found": 1},
                FINISH_KEY: FINISH_WORKFLOW,
                LINEAGE_KEY: {"duration": 12.0},
                ENRICH_KEY: ENRICH_WORKFLOW,
                **dict(HOOKED.values()),
                **dict(self.shape.workflows),
            }
        }
        (self.home / "emulator.json").write_text(json.dumps(config))
        port_file = self.home / "emulator.port"
        self.env = loopback_env(self.home, dags, self.api_port)
        self.env.update(
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__CORE__PARALLELISM="4",
            # Airflow 3.0 serves deserialized XCom values over REST only when this is on (later releases always).
            AIRFLOW__API__ENABLE_XCOM_DESERIALIZE_SUPPORT="True",
            AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD="10",
            AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
            # A lost worker (its task supervisor gone) is noticed in seconds, not the default 5 minutes.
            AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="15",
            AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL="3",
            ALTA_ETL_DB=str(self.home / "news.sqlite"),
            ALTA_BATCH_DIR=str(self.home / "batches"),
        )
        self.env.update(openlineage_env(self.lineage_file) if self.shape.openlineage else OPENLINEAGE_OFF)
        self.env.update(dict(self.shape.env))
        if self.on_postgres:
            create_database(self.database)
            db_url = f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.database}"
            self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = db_url
        if self.shape.distributed:
            self.env.update(self._distributed_env())
        self.spawn(
            "emulator",
            [
                str(BIN / "alta-emulator"),
                "--port",
                "0",
                "--port-file",
                str(port_file),
                "--config",
                str(self.home / "emulator.json"),
            ],
        )
        wait_for(lambda: port_file.exists() and port_file.read_text().strip(), 20, "emulator port")
        self.emulator_url = f"http://127.0.0.1:{port_file.read_text().strip()}"

        def conn(key: str, **extra: Any) -> str:
            return json.dumps({"conn_type": "alta", "host": self.emulator_url, "password": key, "extra": extra})

        self.env.update(
            AIRFLOW_CONN_ALTA_DEFAULT=conn(API_KEY),
            AIRFLOW_CONN_ALTA_SLOW=conn(SLOW_KEY),
            AIRFLOW_CONN_ALTA_WORKER=conn(WORKER_KEY),
            AIRFLOW_CONN_ALTA_RETRY=conn(RETRY_KEY),
            AIRFLOW_CONN_ALTA_NOT_FOUND=conn(NOT_FOUND_KEY),
            AIRFLOW_CONN_ALTA_FINISH=conn(FINISH_KEY),
            AIRFLOW_CONN_ALTA_LINEAGE=conn(LINEAGE_KEY),
            AIRFLOW_CONN_ALTA_ENRICH=conn(ENRICH_KEY),
            AIRFLOW_VAR_ALTA_WEBHOOK_URL=f"{self.emulator_url}/_emulator/sink",
            AIRFLOW_VAR_ALTA_WEBHOOK_TOKEN=WEBHOOK_TOKEN,
        )
        for conn_id, (key, _) in HOOKED.items():
            self.env[f"AIRFLOW_CONN_{conn_id.upper()}"] = conn(key, webhook_secret=WEBHOOK_SECRET)
        for conn_id, key, extra in self.shape.connections:
            self.env[f"AIRFLOW_CONN_{conn_id.upper()}"] = conn(key, **extra)
        self.airflow("db", "migrate")
        self.airflow("pools", "set", "alta_api", "2", "Alta API quota")
        self.start_api_server()
        self.start_scheduler()
        self.spawn("dag-processor", [str(BIN / "airflow"), "dag-processor"])
        for name in self.triggerer_names:
            self.start_triggerer(name)
        for name in self.worker_names:
            self.start_worker(name)
        wait_for(self._healthy, 120, "Airflow api-server health")
        password_file = self.home / "simple_auth_manager_passwords.json.generated"
        wait_for(password_file.exists, 30, "simple auth manager passwords")
        users = json.loads(password_file.read_text())
        user, password = next(iter(users.items()))
        self.token = self.request("POST", "/auth/token", {"username": user, "password": password}, auth=False)[
            "access_token"
        ]

    def stop(self) -> None:
        """Every service asked to stop at once, then waited for (a straggler is killed)."""
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for name in list(self.procs):
            self.kill(name)  # each is already stopping: this waits, and kills what outlasts the wait
        if self.on_postgres:
            drop_database(self.database)
        if self.shape.distributed:
            for key in redis_keys(self.redis_prefix):
                redis_client().delete(key)

    def lineage_events(self) -> list[dict[str, Any]]:
        """The OpenLineage events written so far (``Shape.openlineage``), in the order they were written."""
        if not self.lineage_file.exists():
            return []
        lines = self.lineage_file.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of a query on the stack's PostgreSQL metadata database."""
        import psycopg2

        conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=self.database)
        try:
            with conn, conn.cursor() as cursor:
                cursor.execute(query, params)
                return list(cursor.fetchall())
        finally:
            conn.close()

    def service_of(self, pid: int, names: Iterable[str]) -> str | None:
        """The service that started ``pid`` (directly or through its children)."""
        started = {self.procs[name].pid: name for name in names if name in self.procs}
        while pid > 1:
            if pid in started:
                return started[pid]
            pid = _parent(pid) or 0
        return None

    def airflow(self, *args: str) -> str:
        done = subprocess.run([str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed: {done.stderr[-2000:]}")
        return done.stdout

    # -- REST ----------------------------------------------------------------
    def _healthy(self) -> bool:
        try:
            health = self.request("GET", "/api/v2/monitor/health", auth=False)
        except OSError:
            return False
        return health.get("scheduler", {}).get("status") == "healthy"

    def request(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.api + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def trigger(self, dag_id: str) -> str:
        wait_for(lambda: self._dag_known(dag_id), 120, f"DAG {dag_id} parsed")
        self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        run_id = f"e2e-{dag_id}-{time.time_ns()}"
        self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "logical_date": None})
        return run_id

    def _dag_known(self, dag_id: str) -> bool:
        try:
            self.request("GET", f"/api/v2/dags/{dag_id}")
        except urllib.error.HTTPError:
            return False
        return True

    def dag_run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def wait_dag_run(self, dag_id: str, run_id: str, timeout: float = 180) -> str:
        wait_for(lambda: self.dag_run_state(dag_id, run_id) in ("success", "failed"), timeout, f"{dag_id} to end")
        return self.dag_run_state(dag_id, run_id)

    def task_instance(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        if map_index >= 0:
            path += f"/{map_index}"
        ti: dict[str, Any] = self.request("GET", path)
        return ti

    def task_state(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str | None:
        """The task instance's state; ``None`` also while the scheduler has not created it."""
        try:
            return self.task_instance(dag_id, run_id, task_id, map_index)["state"]
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            raise

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        tis: list[dict[str, Any]] = self.request(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000"
        )["task_instances"]
        return tis

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        path += f"?map_index={map_index}&deserialize=true"
        return self.request("GET", path)["value"]

    def emulator(self, path: str) -> Any:
        with urllib.request.urlopen(self.emulator_url + path, timeout=30) as resp:
            return json.loads(resp.read())

    def alta_runs(self, dag_id: str, run_id: str, task_id: str = "run") -> list[dict[str, Any]]:
        """Each task instance's Alta run: detection delay (run end → task end, and → the query that saw the end)
        and the queries spent."""
        runs = []
        for ti in self.task_instances(dag_id, run_id):
            if ti["task_id"] != task_id:
                continue
            alta_run = self.xcom(dag_id, run_id, task_id, "workflow_run_id", ti["map_index"])
            info = self.emulator(f"/_emulator/runs/{alta_run}")
            ended = datetime.fromisoformat(ti["end_date"]).timestamp()
            runs.append(
                {
                    "map_index": ti["map_index"],
                    "state": ti["state"],
                    "workflow_run_id": alta_run,
                    "delay": ended - info["ends_at"],
                    # The last query is the one that saw the end: when the trigger fired.
                    "noticed": (info["last_query_at"] or ended) - info["ends_at"],
                    "queries": info["queries"],
                    "ends_at": info["ends_at"],
                    "task_end": ended,
                }
            )
        return runs


def _parent(pid: int) -> int | None:
    """``pid``'s parent, from ``/proc`` (``None`` once it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def descendants(root: int) -> list[int]:
    """Every living process below ``root``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        ppid = _parent(int(entry.name))
        if ppid is not None:
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def services_reachable() -> str | None:
    """``None`` when the distributed shape's PostgreSQL and Redis answer on 127.0.0.1, else what is missing."""
    missing = []
    for what, host, port in (("PostgreSQL", PG_HOST, PG_PORT), ("Redis", REDIS_HOST, REDIS_PORT)):
        try:
            socket.create_connection((host, port), timeout=2).close()
        except OSError:
            missing.append(f"{what} on {host}:{port}")
    return ", ".join(missing) or None


def _admin_sql(statement: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement)
    finally:
        conn.close()


def create_database(name: str) -> None:
    _admin_sql(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_client() -> Any:
    import redis

    return redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=0)


def redis_keys(prefix: str) -> list[bytes]:
    return list(redis_client().scan_iter(match=f"{prefix}*", count=1000))


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if predicate():
                return
        except OSError:  # a service busy or restarting (a REST call timed out or was refused): ask again
            pass
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
