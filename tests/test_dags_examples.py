"""The example DAGs are what users copy: they pass ruff's Airflow rules (AIR), preview ones included, and the batch
example runs as a user runs it (``dag.test()``) against the emulator."""

from __future__ import annotations

import csv
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.stack import ENRICH_KEY, ENRICH_WORKFLOW

ROOT = Path(__file__).parent.parent
#: The test extra's ruff (every environment that runs the tests has it).
RUFF = Path(sys.executable).parent / "ruff"


def test_examples_pass_ruff_s_airflow_rules():
    # A ruff that does not know the rule would pass vacuously: AIR202 is the newest one the examples met.
    known = subprocess.run([RUFF, "rule", "AIR202"], capture_output=True, text=True)
    assert known.returncode == 0, f"{RUFF} is too old to check AIR202: {known.stderr}"
    result = subprocess.run(
        [RUFF, "check", "--preview", "--select", "AIR", "--no-cache", "--output-format", "concise", "dags_examples"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.usefixtures("airflow_db")
def test_the_batch_example_enriches_every_product_and_loads_the_table(alta_emulator, tmp_path, monkeypatch):
    alta_emulator.configure(api_key=ENRICH_KEY, **{**ENRICH_WORKFLOW, "time_scale": 0.05})
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_ENRICH", alta_emulator.connection_uri(ENRICH_KEY))
    monkeypatch.setenv("ALTA_BATCH_DIR", str(tmp_path / "batches"))
    monkeypatch.setenv("ALTA_ETL_DB", str(tmp_path / "etl.sqlite"))
    # dag.test() finds the DAG in its bundle: the examples' folder, as under ``make demo``.
    from airflow import settings

    monkeypatch.setattr(settings, "DAGS_FOLDER", str(ROOT / "dags_examples"))
    monkeypatch.syspath_prepend(str(ROOT / "dags_examples"))
    monkeypatch.delitem(sys.modules, "alta_batch_enrich", raising=False)
    import alta_batch_enrich

    with (ROOT / "dags_examples" / "data" / "products.csv").open() as data:
        products = {row["sku"]: row for row in csv.DictReader(data)}
    dag_run = alta_batch_enrich.dag.test()
    tis = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    assert {task_id: ti.state for task_id, ti in tis.items()} == {"enrich": "success", "load": "success"}
    manifest = tis["enrich"].xcom_pull(task_ids="enrich")
    assert (manifest["total"], manifest["succeeded"], manifest["failed"]) == (len(products), len(products), 0)
    assert manifest["total_cost"] == pytest.approx(0.6928 * len(products))
    assert manifest["output_path"].startswith(f"file://{tmp_path}/batches/alta_batch_enrich/")
    stats = alta_emulator.key_stats(ENRICH_KEY)
    assert stats["runs"] == stats["distinct_inputs"] == len(products) and stats["duplicate_runs"] == 0
    with sqlite3.connect(tmp_path / "etl.sqlite") as db:
        loaded = dict(db.execute("SELECT sku, description FROM product_enrichment").fetchall())
    assert tis["load"].xcom_pull(task_ids="load") == len(loaded) == len(products)
    assert loaded == {
        sku: f"{row['name']}: built for the outdoors, tested in every season." for sku, row in products.items()
    }
