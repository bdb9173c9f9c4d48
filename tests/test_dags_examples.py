"""The example DAGs are what users copy: they pass ruff's Airflow rules (AIR), preview ones included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
