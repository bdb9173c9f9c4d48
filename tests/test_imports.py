"""DAG files import the operator and sensor on every parse: that must stay cheap."""

from __future__ import annotations

import json
import subprocess
import sys

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


def test_example_dags_import_without_errors():
    from pathlib import Path

    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0, 3.1
        from airflow.models.dagbag import DagBag

    folder = Path(__file__).parent.parent / "dags_examples"
    bag = DagBag(dag_folder=str(folder))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {"alta_sync_invoke", "alta_deferrable_etl", "alta_async_sensor", "alta_mapped_fanout"}
