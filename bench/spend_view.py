"""The "Alta spend" view with 50,000 finished runs in the metadata database: page and JSON latency.

For each backend (SQLite; PostgreSQL too when it answers on 127.0.0.1:5432, in a database made for the run and
dropped after), a fresh Airflow home is migrated, ten DAGs are registered, and 50,000 finished Alta task
instances' XComs are written as a task's push writes them (nine per run, the output included; 5 % FAILED;
spread over the last 45 days). The view's app is mounted with Airflow's simple auth manager and served by
uvicorn on 127.0.0.1; an admin's requests (all DAGs, last 30 days; one DAG; a 7-day range) are timed over HTTP,
median and max of 7 after a warm-up. Each backend runs in a fresh interpreter (Airflow binds its database at
import).
"""

from __future__ import annotations

import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

RUNS = 50_000
DAGS = 10
REPEAT = 7
PG = ("127.0.0.1", 5432, "postgres")
DAG_FILE = """
import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

for i in range({dags}):
    with DAG(f"spend_{{i}}", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
        EmptyOperator(task_id="news")
    globals()[f"dag_{{i}}"] = dag
"""
OUTPUT = json.dumps({"news": [{"title": f"Story {i}", "summary": "A concise summary. " * 4} for i in range(5)]})


def xcom_rows(now: datetime) -> list[tuple[Any, ...]]:
    """(dag_run_id, task_id, map_index, key, dag_id, run_id, value JSON text, timestamp) of every run."""
    rng = random.Random(16)
    rows = []
    for i in range(RUNS):
        dag_id, run_id = f"spend_{i % DAGS}", f"run_{i}"
        ended = now - timedelta(seconds=rng.uniform(0, 45 * 86400))
        failed = rng.random() < 0.05
        cost = round(rng.uniform(0.2, 1.2) / (2 if failed else 1), 4)
        values = {
            "workflow_run_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "status": "FAILED" if failed else "SUCCEED",
            "total_cost": cost,
            "total_tokens": int(cost * 2500),
            "workflow_execution_time_ms": rng.randint(1000, 60000),
            "workflow_name": "todayNews" if i % 3 else "dailyDigest",
            "workflow_version": "1.0.1",
            "_link_AltaRunLink": "",
        }
        if not failed:
            values["return_value"] = OUTPUT
        for key, value in values.items():
            text = value if key == "return_value" else json.dumps(value)
            rows.append((i + 1, "news", -1, key, dag_id, run_id, text, ended.strftime("%Y-%m-%d %H:%M:%S.%f")))
    return rows


def fill(url: str) -> int:
    """Write the XCom rows straight into the table (foreign keys off: the view reads the XCom table alone)."""
    rows = xcom_rows(datetime.now(timezone.utc).replace(tzinfo=None))
    columns = "dag_run_id, task_id, map_index, key, dag_id, run_id, value, timestamp"
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        conn.executemany(f"INSERT INTO xcom ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.commit()
        conn.execute("ANALYZE")
        conn.close()
        return len(rows)
    import psycopg2
    from psycopg2.extras import execute_values

    conn = psycopg2.connect(url.replace("postgresql+psycopg2", "postgresql"))
    with conn, conn.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        pg_rows = [(*row[:7], row[7] + "+00") for row in rows]
        execute_values(cursor, f"INSERT INTO xcom ({columns}) VALUES %s", pg_rows, page_size=5000)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("ANALYZE xcom")
    conn.close()
    return len(rows)


def serve(app: Any) -> tuple[str, Any]:
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def timed(url: str, token: str) -> tuple[float, int]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as answer:
        body = answer.read()
    return (time.perf_counter() - started) * 1000, len(body)


def child() -> None:
    """One backend, in this (fresh) interpreter: migrate, fill, serve, time. Prints one JSON line."""
    url = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True)
    subprocess.run([airflow, "dags", "reserialize"], check=True, capture_output=True)
    started = time.perf_counter()
    rows = fill(url)
    filled = time.perf_counter() - started

    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi import FastAPI

    from airflow_provider_alta.plugins.spend_view import create_app

    app = FastAPI()
    manager = init_auth_manager(app)
    app.mount("/alta-spend", create_app())
    base, server = serve(app)
    token = manager.generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
    week = (datetime.now(timezone.utc).date() - timedelta(days=6)).isoformat()
    cases = {
        "page, all DAGs, 30 days": "/alta-spend/",
        "JSON, all DAGs, 30 days": "/alta-spend/api/spend",
        "JSON, one DAG, 30 days": "/alta-spend/api/spend?dag_id=spend_3",
        "page, all DAGs, 7 days": f"/alta-spend/?start={week}",
    }
    figures: dict[str, Any] = {"xcom_rows": rows, "fill_s": round(filled, 1)}
    for name, path in cases.items():
        timed(base + path, token)
        times = [timed(base + path, token)[0] for _ in range(REPEAT)]
        figures[name] = {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}
    with urllib.request.urlopen(
        urllib.request.Request(base + cases["JSON, all DAGs, 30 days"], headers={"Authorization": f"Bearer {token}"})
    ) as answer:
        figures["runs_in_30_days"] = json.loads(answer.read())["totals"]["runs"]
    server.should_exit = True
    print(json.dumps(figures))


def pg_available() -> bool:
    try:
        socket.create_connection(PG[:2], timeout=2).close()
    except OSError:
        return False
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return False
    return True


def _pg_admin(statement: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host=PG[0], port=PG[1], user=PG[2], dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(statement)
    conn.close()


def run_backend(name: str) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix=f"alta-bench-spend-{name}-"))
    (home / "dags").mkdir()
    (home / "dags" / "spend_dags.py").write_text(DAG_FILE.format(dags=DAGS))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ALTA_"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        AIRFLOW__API_AUTH__JWT_SECRET=uuid.uuid4().hex * 2,
    )
    database = f"alta_bench_spend_{uuid.uuid4().hex[:10]}"
    if name == "postgresql":
        _pg_admin(f'CREATE DATABASE "{database}"')
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"postgresql+psycopg2://{PG[2]}@{PG[0]}:{PG[1]}/{database}"
    else:
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home / 'airflow.db'}"
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--child"], env=env, capture_output=True, text=True, timeout=1800
        )
        if done.returncode != 0:
            raise RuntimeError(f"the {name} run failed: {done.stderr[-3000:]}")
        figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return figures
    finally:
        if name == "postgresql":
            _pg_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def main() -> list[str]:
    backends = ["sqlite", *(["postgresql"] if pg_available() else [])]
    lines = [
        f"## Alta spend view: {RUNS:,} finished runs ({DAGS} DAGs, 45 days)",
        "",
        "| backend | request | median ms | max ms |",
        "|---|---|---|---|",
    ]
    notes = []
    for backend in backends:
        figures = run_backend(backend)
        for name, value in figures.items():
            if isinstance(value, dict):
                lines.append(f"| {backend} | {name} | {value['median_ms']} | {value['max_ms']} |")
        notes.append(
            f"- {backend}: {figures['xcom_rows']:,} XCom rows written in {figures['fill_s']} s; "
            f"{figures['runs_in_30_days']:,} runs in the last 30 days"
        )
    lines += ["", *notes]
    if "postgresql" not in backends:
        lines.append("- PostgreSQL not measured: nothing answers on 127.0.0.1:5432 (or psycopg2 is missing)")
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    if "--child" in sys.argv:
        child()
    else:
        main()
