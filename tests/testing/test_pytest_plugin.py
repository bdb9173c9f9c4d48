"""The ``pytest11`` plugin loads in every pytest run where the provider is installed: it must cost nothing there."""

from __future__ import annotations

import json
import subprocess
import sys

#: What importing the plugin adds to a process that already has pytest, as the entry point does.
ADDED_BY_THE_PLUGIN = """
import json, sys
import pytest
before = set(sys.modules)
import airflow_provider_alta.testing.pytest_plugin
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_loading_the_plugin_imports_neither_the_emulator_nor_aiohttp():
    probe = (
        "import airflow_provider_alta.testing.pytest_plugin, sys; "
        "print('aiohttp' in sys.modules, 'airflow_provider_alta.testing.emulator' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_loading_the_plugin_imports_only_the_standard_library():
    out = subprocess.run([sys.executable, "-c", ADDED_BY_THE_PLUGIN], capture_output=True, text=True, check=True).stdout
    added = json.loads(out)
    ours = {"airflow_provider_alta", "airflow_provider_alta.testing", "airflow_provider_alta.testing.pytest_plugin"}
    foreign = [m for m in added if m not in ours and m.split(".")[0] not in sys.stdlib_module_names]
    assert foreign == []


def test_the_fixture_serves_an_emulator(alta_emulator):
    alta_emulator.configure(duration=0)
    assert alta_emulator.invoke_count() == 0
    assert alta_emulator.url.startswith("http://127.0.0.1:")
