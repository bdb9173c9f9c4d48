"""A real Airflow on 127.0.0.1: emulator, api-server, scheduler, dag-processor, triggerer."""

from __future__ import annotations

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
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

API_KEY = "sk-e2e-SECRET-d41f88a0c7"
SLOW_KEY = "sk-e2e-SLOW-SECRET-93b2"
WORKER_KEY = "sk-e2e-WORKER-SECRET-5e1c"
RETRY_KEY = "sk-e2e-RETRY-SECRET-8a2f"
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
SECRETS = (
    API_KEY,
    SLOW_KEY,
    WORKER_KEY,
    RETRY_KEY,
    WEBHOOK_TOKEN,
    WEBHOOK_SECRET,
    *(key for key, _ in HOOKED.values()),
)


def loopback_env(home: Path, dags: Path, api_port: int) -> dict[str, str]:
    """This process' environment without its Airflow settings, plus an Airflow home on SQLite whose API server
    listens on 127.0.0.1 only and mounts the Alta webhook receiver."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ALTA_"))}
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.api_port = free_port()
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.token = ""
        self.emulator_url = ""
        self.env: dict[str, str] = {}

    # -- processes -----------------------------------------------------------
    def spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.home / f"service-{name}.log", "ab")  # noqa: SIM115 - kept open for the process' life
        proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def kill(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def start_triggerer(self) -> None:
        self.spawn("triggerer", [str(BIN / "airflow"), "triggerer", "--skip-serve-logs"])

    def start(self) -> None:
        dags = self.home / "dags"
        dags.mkdir(parents=True)
        for source in [*(ROOT / "dags_examples").glob("*.py"), *(ROOT / "tests/e2e/dags").glob("*.py")]:
            shutil.copy(source, dags / source.name)
        config = {
            "workflows": {
                # Runs outlast the scheduler's handling of a deferral (apache/airflow#71580).
                API_KEY: {"duration": 12.0},
                SLOW_KEY: {"duration": 25.0},
                WORKER_KEY: {"duration": 15.0},
                RETRY_KEY: {"duration": 12.0},
                **dict(HOOKED.values()),
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
        )
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
            AIRFLOW_VAR_ALTA_WEBHOOK_URL=f"{self.emulator_url}/_emulator/sink",
            AIRFLOW_VAR_ALTA_WEBHOOK_TOKEN=WEBHOOK_TOKEN,
        )
        for conn_id, (key, _) in HOOKED.items():
            self.env[f"AIRFLOW_CONN_{conn_id.upper()}"] = conn(key, webhook_secret=WEBHOOK_SECRET)
        self.airflow("db", "migrate")
        self.airflow("pools", "set", "alta_api", "2", "Alta API quota")
        self.spawn("api-server", [str(BIN / "airflow"), "api-server"])
        self.spawn("scheduler", [str(BIN / "airflow"), "scheduler", "--skip-serve-logs"])
        self.spawn("dag-processor", [str(BIN / "airflow"), "dag-processor"])
        self.start_triggerer()
        wait_for(self._healthy, 120, "Airflow api-server health")
        password_file = self.home / "simple_auth_manager_passwords.json.generated"
        wait_for(password_file.exists, 30, "simple auth manager passwords")
        users = json.loads(password_file.read_text())
        user, password = next(iter(users.items()))
        self.token = self.request("POST", "/auth/token", {"username": user, "password": password}, auth=False)[
            "access_token"
        ]

    def stop(self) -> None:
        for name in list(self.procs):
            self.kill(name)

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
        tis: list[dict[str, Any]] = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")[
            "task_instances"
        ]
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


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
