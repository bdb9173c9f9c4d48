"""Without PostgreSQL or Redis the production-shape suite says what to start; where it is required, it fails."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_without_redis(**extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALTA_TESTS_")}
    env.update(ALTA_TESTS_REDIS_PORT="1", **extra)  # nothing listens on port 1
    args = [sys.executable, "-m", "pytest", "tests/distributed", "-q", "-rs", "-p", "no:cacheprovider"]
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.cli
def test_missing_services_are_a_reported_skip():
    done = run_without_redis()
    assert done.returncode == 0, done.stdout[-2000:]
    summary = done.stdout.strip().splitlines()[-1]  # every test of the suite skipped, none run
    assert re.fullmatch(r"\d+ skipped in .*", summary) and int(summary.split()[0]) >= 7, summary
    assert "needs Redis on 127.0.0.1:1" in done.stdout and "start PostgreSQL" in done.stdout


@pytest.mark.cli
def test_missing_services_fail_where_they_are_required():
    done = run_without_redis(ALTA_TESTS_REQUIRE_SERVICES="1")
    assert done.returncode != 0
    assert (
        "ALTA_TESTS_REQUIRE_SERVICES is set, but the production-shape suite needs Redis on 127.0.0.1:1" in done.stdout
    )
