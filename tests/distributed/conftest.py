"""The production-shape stack: PostgreSQL, CeleryExecutor on Redis, two triggerers, two workers; one for the
session, shared by the modules of tests/distributed (a stack takes about a minute to start).

Where PostgreSQL or Redis is missing on 127.0.0.1 (a laptop), these tests are reported as skipped with what to
start; ``ALTA_TESTS_REQUIRE_SERVICES=1`` (set by ``.ci/run``) turns that skip into a failure.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.distributed.figures import FIGURES
from tests.e2e.stack import Shape, Stack, services_reachable

REPORT = Path(__file__).resolve().parents[2] / ".distributed" / "figures.json"

VOLUME_KEY = "sk-dist-VOLUME-SECRET-1a2b3c"
SYNC_KEY = "sk-dist-SYNC-SECRET-4d5e6f"
BUDGET_KEY = "sk-dist-BUDGET-SECRET-7a8b9c"
LOSS_KEY = "sk-dist-LOSS-SECRET-0d1e2f"
WEBHOOKS_KEY = "sk-dist-WEBHOOKS-SECRET-3a4b5c"
RESTART_KEY = "sk-dist-RESTART-SECRET-6d7e8f"
BATCH_KEY = "sk-dist-BATCH-SECRET-9e0f1a"
DIST_WEBHOOK_SECRET = "whs-dist-SECRET-9a0b1c2d3e"
#: Requests per hour of the budget scenario's key (Alta's professional plan).
BUDGET_LIMIT = 1000
BUDGET_USED_BEFORE = 400
#: Long enough for all 50 webhook tasks to defer before the first run ends (their fallback poll comes after 108-120 s).
WEBHOOK_RUN_SECONDS = 90.0

SHAPE = Shape(
    distributed=True,
    triggerers=2,
    workers=2,
    slots=8,
    dag_files=("distributed_dags.py",),
    workflows=(
        (VOLUME_KEY, {"duration": 20.0, "duration_field": "seconds", "input_schema": None}),
        (SYNC_KEY, {"duration": 10.0}),
        (
            BUDGET_KEY,
            {
                "duration": 10.0,
                "duration_field": "seconds",
                "input_schema": None,
                "rate_limit": BUDGET_LIMIT,
                "rate_window": 3600.0,
                # The hour is 55 minutes old and other clients spent 400 of it: the window resets mid-scenario.
                "rate_window_age": 3300.0,
                "rate_used_before": BUDGET_USED_BEFORE,
            },
        ),
        (LOSS_KEY, {"duration": 40.0}),
        (WEBHOOKS_KEY, {"duration": WEBHOOK_RUN_SECONDS}),
        (RESTART_KEY, {"duration": 20.0, "duration_field": "seconds", "input_schema": None}),
        # A "10 s" workflow that lasts 0.5 s (+-20 %) on the wall clock: the batch's 2,000 runs take seconds.
        (BATCH_KEY, {"duration": 10.0, "duration_jitter": 2.0, "time_scale": 0.05, "input_schema": None}),
    ),
    connections=(
        ("alta_volume", VOLUME_KEY, {}),
        ("alta_sync", SYNC_KEY, {}),
        ("alta_budget", BUDGET_KEY, {}),
        ("alta_loss", LOSS_KEY, {}),
        ("alta_webhooks", WEBHOOKS_KEY, {"webhook_secret": DIST_WEBHOOK_SECRET}),
        ("alta_restart", RESTART_KEY, {}),
        ("alta_batch", BATCH_KEY, {"webhook_secret": DIST_WEBHOOK_SECRET}),
    ),
)
DIST_SECRETS = (
    VOLUME_KEY,
    SYNC_KEY,
    BUDGET_KEY,
    LOSS_KEY,
    WEBHOOKS_KEY,
    RESTART_KEY,
    BATCH_KEY,
    DIST_WEBHOOK_SECRET,
)


@pytest.fixture(scope="session")
def dist_stack() -> Iterator[Stack]:
    missing = services_reachable()
    if missing:
        reason = (
            f"the production-shape suite needs {missing} (start PostgreSQL with trust auth for 'postgres' and Redis, "
            "e.g. 'apt-get install postgresql redis-server')"
        )
        if os.environ.get("ALTA_TESTS_REQUIRE_SERVICES"):
            pytest.fail(f"ALTA_TESTS_REQUIRE_SERVICES is set, but {reason}")
        pytest.skip(reason)
    home = Path(tempfile.mkdtemp(prefix="alta-dist-airflow-"))
    stack = Stack(home, SHAPE)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        report()


def report() -> None:
    """Write the scenarios' figures next to the checkout (the session's summary shows them too)."""
    if not FIGURES:
        return
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(FIGURES, indent=2, sort_keys=True, default=str))
