"""DAG files import the operator and sensor on every parse: that must stay cheap."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, sys
import airflow.sdk
before = set(sys.modules)
import airflow_provider_alta.operators.alta, airflow_provider_alta.sensors.alta
added = sorted(set(sys.modules) - before)
print(json.dumps(added))
"""


def test_operator_and_sensor_do_not_import_http_clients():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stdout
    added = json.loads(out.strip().splitlines()[-1])
    heavy = [m for m in added if m.split(".")[0] in ("aiohttp", "requests", "urllib3", "tenacity")]
    assert heavy == []
    assert "airflow_provider_alta.testing.emulator" not in added


#: The package's modules a DAG file's parse imports with the operator and the sensor: the argument checks and the
#: class definitions. What the task needs when it runs (the finish, the run-id store, the webhook, the triggerer's
#: side, the Airflow plumbing) is imported when it runs.
PARSE_PATH = {
    "airflow_provider_alta._airflow",
    "airflow_provider_alta._airflow.fail_fast",
    "airflow_provider_alta._airflow.fresh_retry",
    "airflow_provider_alta._airflow.lineage",
    "airflow_provider_alta._airflow.version_compat",
    "airflow_provider_alta._core",
    "airflow_provider_alta._core.json_limits",
    "airflow_provider_alta._core.polling",
    "airflow_provider_alta._core.validation",
    "airflow_provider_alta.exceptions",
    "airflow_provider_alta.links",
    "airflow_provider_alta.links.alta",
    "airflow_provider_alta.operators",
    "airflow_provider_alta.operators._arguments",
    "airflow_provider_alta.operators.alta",
    "airflow_provider_alta.sensors",
    "airflow_provider_alta.sensors.alta",
    "airflow_provider_alta.templated",
}


def test_a_dag_parse_pays_for_the_parse_path_only():
    """The parse path, held to its list, costs less than the rest of the package, measured in the same run.

    Both from source (a machine that keeps no bytecode) and from bytecode, medians of 5 rounds in one interpreter
    (scripts/import_probe.py). Before the parse path was kept to the class definitions it cost about four times
    the rest (52 against 12 ms from source); bench/import_cost.py prints the figures in fresh interpreters.
    """
    probe = Path(__file__).parent.parent / "scripts" / "import_probe.py"
    out = subprocess.run([sys.executable, str(probe), "5"], capture_output=True, text=True, check=True).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    assert set(figures["parse_modules"]) == PARSE_PATH
    # Only Task SDK modules a DAG file meets anyway (the sensor and link bases; XComArg, already loaded on 3.3).
    assert all(name.startswith("airflow.sdk.") for name in figures["other_modules"]), figures["other_modules"]
    assert figures["parse_source"] < figures["rest_source"], figures
    assert figures["parse_bytecode"] < figures["rest_bytecode"], figures


def test_example_dags_import_without_errors():
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0, 3.1
        from airflow.models.dagbag import DagBag

    folder = Path(__file__).parent.parent / "dags_examples"
    bag = DagBag(dag_folder=str(folder))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {
        "alta_sync_invoke",
        "alta_deferrable_etl",
        "alta_async_sensor",
        "alta_mapped_fanout",
        "alta_batch_enrich",
    }


#: What a DAG file's parse imports with the batch operator: its argument checks and its class, nothing of the engine.
BATCH_PARSE_PATH = {
    "airflow_provider_alta._airflow",
    "airflow_provider_alta._airflow.fail_fast",
    "airflow_provider_alta._airflow.version_compat",
    "airflow_provider_alta._core",
    "airflow_provider_alta._core.batch_arguments",
    "airflow_provider_alta._core.json_limits",
    "airflow_provider_alta._core.polling",
    "airflow_provider_alta._core.validation",
    "airflow_provider_alta.exceptions",
    "airflow_provider_alta.operators",
    "airflow_provider_alta.operators.batch",
    "airflow_provider_alta.templated",
}


def test_the_batch_operator_parses_without_its_engine():
    script = SCRIPT.replace(
        "airflow_provider_alta.operators.alta, airflow_provider_alta.sensors.alta",
        "airflow_provider_alta.operators.batch",
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    added = json.loads(out.strip().splitlines()[-1])
    # The package itself: imported by `airflow.sdk` where it registers its provider (3.3), else here (3.0-3.2).
    assert {m for m in added if m.startswith("airflow_provider_alta.")} == BATCH_PARSE_PATH
    # Nothing else but the Task SDK's own modules (3.0-3.2 load XComArg's lazily): not even fsspec or asyncio's kin.
    assert [m for m in added if not m.startswith(("airflow_provider_alta", "airflow.sdk."))] == []
