"""A batch's worker killed with SIGKILL at three points, then resumed: every item gets its row, and no item
more than one paid run (emulator's counts). Each try is a process of its own, as a worker is."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SECRET_KEY

pytestmark = [pytest.mark.cli, pytest.mark.usefixtures("alta_conn")]

CHILD = Path(__file__).with_name("batch_child.py")
ITEMS = 300


def run_records(output: Path) -> int:
    return sum(
        line.count(b'"event":"run"')
        for f in (output / "_alta_batch" / "journal").glob("*.jsonl")
        for line in [f.read_bytes()]
    )


def rows(output: Path) -> list[dict]:
    return [json.loads(line) for part in sorted(output.glob("part-*.jsonl")) for line in part.read_text().splitlines()]


def start(output: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(CHILD), str(output), str(ITEMS), "30"], env=env)


def test_a_batch_killed_three_times_pays_once_per_item(alta_emulator, tmp_path):
    alta_emulator.configure(api_key=SECRET_KEY, duration=0.6, input_schema=None)
    output = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for point in (60, 150, 240):
        child = start(output, env)
        deadline = time.monotonic() + 60
        while run_records(output) < point:
            assert child.poll() is None, "the batch ended before it could be killed"
            assert time.monotonic() < deadline, f"{run_records(output)} runs recorded after 60 s"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait()
    last = start(output, env)
    assert last.wait(timeout=120) == 0
    found = rows(output)
    keys = [r["key"] for r in found]
    assert sorted(keys) == sorted(f"k{n}" for n in range(ITEMS))  # one row per item, no duplicate
    unknown = [r for r in found if r["status"] == "UNKNOWN"]
    succeeded = [r for r in found if r["status"] == "SUCCEED"]
    assert len(succeeded) + len(unknown) == ITEMS
    assert len({r["workflow_run_id"] for r in succeeded}) == len(succeeded)
    runs = alta_emulator.stats()["runs"]
    # Never a second run for an item; the only runs nobody can name are those of invokes a kill left unanswered.
    assert ITEMS - len(unknown) <= runs <= ITEMS
    manifest = json.loads((output / "_alta_batch" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["summary"]["succeeded"] == len(succeeded)
