"""Provider registration: metadata valid against Airflow's own schemas, and seen by Airflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import airflow
import jsonschema
import pytest

from airflow_provider_alta.get_provider_info import get_provider_info

AIRFLOW_DIR = Path(airflow.__file__).parent


def test_provider_info_matches_airflow_schema():
    schema = json.loads((AIRFLOW_DIR / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_connection_form_matches_strict_schema():
    schema = json.loads((AIRFLOW_DIR / "provider.yaml.schema.json").read_text())
    conn_schema = schema["properties"]["connection-types"]
    jsonschema.validate(get_provider_info()["connection-types"], conn_schema)
    conn = get_provider_info()["connection-types"][0]
    assert conn["ui-field-behaviour"]["relabeling"] == {"host": "Base URL", "password": "API Key"}
    assert set(conn["ui-field-behaviour"]["hidden-fields"]) == {"login", "schema", "port"}


def test_package_name_matches_distribution():
    assert get_provider_info()["package-name"] == metadata.metadata("airflow-provider-alta")["Name"]
    points = metadata.entry_points(group="apache_airflow_provider")
    assert any(p.value == "airflow_provider_alta.get_provider_info:get_provider_info" for p in points)


def _airflow(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "airflow", *args], env=os.environ.copy(), capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.mark.cli
def test_airflow_lists_provider_and_connection_type():
    assert "airflow-provider-alta" in _airflow("providers", "list", "-o", "json")
    assert "airflow_provider_alta.hooks.alta.AltaHook" in _airflow("providers", "hooks", "-o", "json")


FORM = """
import json
from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
(alta,) = [hook for hook in HookMetaService.hook_meta_data() if hook.connection_type == "alta"]
print(json.dumps(alta.model_dump(mode="json")))
"""


def test_connection_form_is_labelled_on_this_airflow():
    """What the UI's connection form shows, as the API server builds it (3.2+ from provider info, 3.0/3.1 from
    the hook's form methods)."""
    done = subprocess.run([sys.executable, "-c", FORM], env=os.environ.copy(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    form = json.loads(done.stdout.strip().splitlines()[-1])
    declared = get_provider_info()["connection-types"][0]["conn-fields"]
    extra = form["extra_fields"]
    assert set(extra) == set(declared)
    for name, spec in declared.items():
        assert extra[name]["schema"]["title"] == spec["label"], name
    assert extra["webhook_secret"]["schema"]["format"] == "password"
    assert "boolean" in extra["verify"]["schema"]["type"]
    standard = form["standard_fields"]
    assert standard["host"]["title"] == "Base URL" and standard["password"]["title"] == "API Key"
    assert standard["host"]["placeholder"] == "https://altatech.ai"
    assert all(standard[name]["hidden"] for name in ("login", "port", "url_schema"))


def test_config_options_were_added_in_a_version_the_package_has():
    """Airflow shows ``version_added`` in its config docs: a version newer than the package is a release not out."""
    from packaging.version import Version

    from airflow_provider_alta import __version__

    options = {
        f"[{section}] {name}": option["version_added"]
        for section, spec in get_provider_info()["config"].items()
        for name, option in spec["options"].items()
    }
    assert {name: added for name, added in options.items() if Version(added) > Version(__version__)} == {}
