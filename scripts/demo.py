"""``make demo``: run the example ETL DAG end to end and show what the workflow produced, then the batch example
(a product CSV enriched in one task and loaded into a table).

Without configuration it starts the local Alta emulator and points the
``alta_default`` connection at it. With ``ALTA_API_KEY`` (and optionally
``ALTA_BASE_URL``) or your own ``AIRFLOW_CONN_ALTA_DEFAULT`` set, the same
command runs against the real service. Airflow runs from a throwaway home
that is removed at the end, with every process it started.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="alta-demo-airflow-"))
    os.environ.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags_examples"),
    )
    os.environ.setdefault("ALTA_ETL_DB", str(home / "news.sqlite"))
    os.environ.setdefault("ALTA_BATCH_DIR", str(home / "batches"))
    emulator = None
    try:
        if os.environ.get("AIRFLOW_CONN_ALTA_DEFAULT"):
            print("Using your AIRFLOW_CONN_ALTA_DEFAULT connection.")
        elif os.environ.get("ALTA_API_KEY"):
            base = os.environ.get("ALTA_BASE_URL", "https://altatech.ai")
            os.environ["AIRFLOW_CONN_ALTA_DEFAULT"] = json.dumps(
                {"conn_type": "alta", "host": base, "password": os.environ["ALTA_API_KEY"]}
            )
            print(f"Using the real Alta API at {base}.")
        else:
            from airflow_provider_alta.testing.client import EmulatorClient
            from airflow_provider_alta.testing.emulator import EmulatorThread

            emulator = EmulatorThread().start()
            client = EmulatorClient(emulator.url)
            client.configure(duration=3.0)
            os.environ["AIRFLOW_CONN_ALTA_DEFAULT"] = client.connection_uri()
            client.configure(api_key=ENRICH_KEY, **ENRICH_WORKFLOW)
            os.environ["AIRFLOW_CONN_ALTA_ENRICH"] = client.connection_uri(ENRICH_KEY)
            print(f"Started the Alta emulator at {emulator.url} (a 3 s todayNews workflow).")

        print("Preparing a throwaway Airflow home...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        sys.path.insert(0, str(ROOT / "dags_examples"))
        import logging

        logging.disable(logging.INFO)
        from alta_deferrable_etl import dag

        print("Running the DAG alta_deferrable_etl (extract -> Alta, deferred -> load)...", flush=True)
        began = time.time()
        with open(home / "dag-test.log", "w") as log, _redirect(log):
            dag_run = dag.test()
        ti = dag_run.get_task_instance("summarise_news")
        output = ti.xcom_pull(task_ids="summarise_news")
        facts = {
            key: ti.xcom_pull(task_ids="summarise_news", key=key)
            for key in (
                "workflow_name",
                "workflow_version",
                "workflow_run_id",
                "status",
                "total_cost",
                "total_tokens",
                "workflow_execution_time_ms",
            )
        }
        loaded = dag_run.get_task_instance("load").xcom_pull(task_ids="load")
        print(f"\nDAG run {dag_run.state} in {time.time() - began:.1f} s\n")
        if str(dag_run.state) != "success":
            failed = [f"{ti.task_id} ({ti.state})" for ti in dag_run.get_task_instances() if str(ti.state) != "success"]
            print(f"Not successful: {', '.join(failed)}. The cause:")
            for error in task_errors((home / "dag-test.log").read_text(errors="replace")):
                print(f"  {error}")
            return 1
        print(f"Workflow  {facts['workflow_name']} {facts['workflow_version']}, run {facts['workflow_run_id']}")
        print(
            f"Status    {facts['status']} in {(facts['workflow_execution_time_ms'] or 0) / 1000:.1f} s, "
            f"cost {facts['total_cost']} credits, {facts['total_tokens']} tokens"
        )
        print("Output:")
        for item in (output or {}).get("news", []):
            print(f"  * {item['title']}\n    {item['summary']} ({item.get('media')})")
        where = os.environ["ALTA_ETL_DB"]
        if where.startswith(str(home)):
            print(f"Loaded    {loaded} rows into a throwaway SQLite file (set ALTA_ETL_DB to keep it)")
        else:
            print(f"Loaded    {loaded} rows into {where}")
        return run_batch_example(home)
    finally:
        if emulator is not None:
            emulator.stop()
        shutil.rmtree(home, ignore_errors=True)


#: The emulator's product-enrichment workflow for the batch example (connection ``alta_enrich``), 2 s a run.
ENRICH_KEY = "alta-emulator-enrich-key"
ENRICH_WORKFLOW = {
    "name": "productEnrichment",
    "duration": 2.0,
    "duration_jitter": 0.4,
    "input_schema": None,
    "output": {
        "description": "${name}: built for the outdoors, tested in every season.",
        "keywords": ["${category}", "outdoor", "${sku}"],
    },
}


def run_batch_example(home: Path) -> int:
    """Run ``alta_batch_enrich`` (its connection ``alta_enrich`` must exist: the emulator's, or your own)."""
    if not os.environ.get("AIRFLOW_CONN_ALTA_ENRICH"):
        print("\nSkipped alta_batch_enrich: set AIRFLOW_CONN_ALTA_ENRICH to your enrichment workflow's connection.")
        return 0
    from alta_batch_enrich import dag

    print("\nRunning the DAG alta_batch_enrich (products.csv -> Alta, one batch task -> load)...", flush=True)
    began = time.time()
    with open(home / "dag-test.log", "a") as log, _redirect(log):
        dag_run = dag.test()
    print(f"\nDAG run {dag_run.state} in {time.time() - began:.1f} s\n")
    if str(dag_run.state) != "success":
        for error in task_errors((home / "dag-test.log").read_text(errors="replace")):
            print(f"  {error}")
        return 1
    manifest = dag_run.get_task_instance("enrich").xcom_pull(task_ids="enrich")
    loaded = dag_run.get_task_instance("load").xcom_pull(task_ids="load")
    print(
        f"Enriched  {manifest['succeeded']} of {manifest['total']} products in one task "
        f"({manifest['this_try']['invokes']} paid runs, {manifest['total_cost']:.4f} credits, "
        f"{manifest['total_tokens']:,.0f} tokens)"
    )
    files, folder, where = len(manifest["results"]), os.environ["ALTA_BATCH_DIR"], os.environ["ALTA_ETL_DB"]
    kept = "a throwaway folder (set ALTA_BATCH_DIR to keep it)" if folder.startswith(str(home)) else folder
    print(f"Results   {files} JSON Lines file(s), one row per product, in {kept}")
    kept = "a throwaway SQLite file" if where.startswith(str(home)) else where
    print(f"Loaded    {loaded} rows into the table product_enrichment of {kept}")
    return 0


#: Traceback lines that are not the error itself (plain, and the box some Airflow releases draw).
_NOT_THE_ERROR = ("Traceback", "The above", "During", "│", "╭", "╰", "┃", "┏", "┗")


def task_errors(log: str) -> list[str]:
    """The exception line of each task failure in a ``dag.test()`` log, once each, without module paths.

    Airflow logs "Task failed with exception" and then the traceback; the unindented lines after it are the
    error (one line, or several where the traceback is drawn in a box and the message wrapped).
    """
    found: list[str] = []
    log = re.sub(r"\x1b\[[0-9;]*m", "", log)  # colours (Airflow 3.0 and 3.1 draw tracebacks in a box)
    for block in log.split("Task failed with exception")[1:]:
        tail: list[str] = []  # the error: the unindented lines after the last traceback line, wrapped or not
        for line in block.splitlines()[1:]:
            if re.match(r"\[?\d{4}-\d\d-\d\d[T ]\d\d:", line):  # the next log record: the traceback is over
                break
            if line and not line[0].isspace() and not line.startswith(_NOT_THE_ERROR):
                tail.append(line)
            elif line.strip():
                tail = []
        last = " ".join(tail) or None
        if last is not None:
            error = re.sub(r"^[\w.]+\.(\w+: )", r"\1", last)
            if error not in found:
                found.append(error)
    return found or ["(no task error in the log: see the DAG run's state above)"]


class _redirect:
    """Send Airflow's own chatter to a file so the demo prints only its result."""

    def __init__(self, stream):
        self.stream = stream

    def __enter__(self):
        self.saved = os.dup(1), os.dup(2)
        os.dup2(self.stream.fileno(), 1)
        os.dup2(self.stream.fileno(), 2)

    def __exit__(self, *exc):
        sys.stdout.flush()
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)


if __name__ == "__main__":
    sys.exit(main())
