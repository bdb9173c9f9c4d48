"""The wait's state machine (RunWaiter), its schedule of transient failures and the outage report."""

from __future__ import annotations

import logging
import random

import pytest

from airflow_provider_alta._core.polling import PollingSettings
from airflow_provider_alta._core.ratelimit import RateBudget
from airflow_provider_alta._core.waiting import SEND, OutageReport, PollSchedule, RunWaiter
from airflow_provider_alta.exceptions import (
    AltaAuthError,
    AltaRateLimitError,
    AltaServerError,
    AltaTimeoutError,
    AltaTransportError,
    AltaValidationError,
)
from airflow_provider_alta.models import WorkflowRun


def test_schedule_fails_fast_on_fatal_and_bounds_transient():
    s = PollSchedule(PollingSettings(max_consecutive_failures=3, jitter=0), started_at=0)
    with pytest.raises(AltaAuthError):
        s.delay_after_failure(AltaAuthError("x", status=401), now=1)
    assert s.delay_after_failure(AltaRateLimitError("x", status=429, retry_after=9), now=1) >= 9
    assert s.delay_after_failure(AltaServerError("x", status=502), now=2) >= 1
    with pytest.raises(AltaServerError):
        s.delay_after_failure(AltaServerError("x", status=502), now=3)


QUERY_URL = "https://alta.example/v1/workflow/query/result"


def test_outage_report_warns_at_once_then_at_most_every_interval_and_tells_the_recovery():
    """A fake clock (the ``now`` arguments): the throttle window passes without waiting."""
    report = OutageReport(QUERY_URL, interval=30.0)
    unavailable = AltaServerError("Alta answered HTTP 503", status=503)
    first = report.failed(unavailable, 2.0, now=1_000.0)
    assert first is not None and first.level == logging.WARNING
    assert QUERY_URL in first.message and "AltaServerError" in first.message and "HTTP 503" in first.message
    assert "next attempt in 2.0 s (at 00:16:42 UTC)" in first.message  # 1 002 s after the epoch
    assert report.failed(unavailable, 4.0, now=1_002.0) is None
    assert report.failed(unavailable, 8.0, now=1_029.9) is None  # still within the window
    later = report.failed(AltaTransportError("dropped", sent=True), 16.0, now=1_030.0)
    assert later is not None and later.level == logging.WARNING
    assert "still failing: 4 failures in a row over 30 s" in later.message and "AltaTransportError" in later.message
    assert report.failed(unavailable, 16.0, now=1_046.0) is None
    recovered = report.answered(now=1_062.0)
    assert recovered is not None and recovered.level == logging.INFO
    assert recovered.message == f"Alta at {QUERY_URL} answers again, after 5 failed queries over 62 s"
    assert report.answered(now=1_070.0) is None  # one line per streak
    # A new streak is told at once again.
    again = report.failed(unavailable, 1.0, now=1_071.0)
    assert again is not None and "query to" in again.message and "still failing" not in again.message
    assert report.answered(now=1_072.0).message.endswith("after 1 failed query over 1 s")


def test_run_waiter_tells_the_streak_through_on_notice():
    notices = []
    schedule = PollSchedule(PollingSettings(jitter=0), started_at=0.0, rng=random.Random(1))
    waiter = RunWaiter("r", schedule, deadline=None, outage=OutageReport(QUERY_URL), on_notice=notices.append)
    running = WorkflowRun.from_response({"workflowRunId": "r", "status": "RUNNING"})
    waiter.after_answer(running, 1.0)
    pauses = [waiter.after_error(AltaServerError("x", status=503), now) for now in (2.0, 4.0, 8.0)]
    waiter.after_answer(running, 15.0)
    assert [n.level for n in notices] == [logging.WARNING, logging.INFO]
    assert f"next attempt in {pauses[0]:.1f} s" in notices[0].message
    assert "after 3 failed queries over 13 s" in notices[1].message


def _run(status: str) -> WorkflowRun:
    return WorkflowRun.from_response({"workflowRunId": "r", "status": status})


def test_run_waiter_steps_say_send_sleep_or_done():
    """The drivers' whole protocol: each step is a send, a pause, or the ended run."""
    schedule = PollSchedule(PollingSettings(min_interval=2, jitter=0), started_at=0.0)
    waiter = RunWaiter("r", schedule, deadline=100.0)
    assert waiter.begin(None, 0.0) is SEND
    assert waiter.received(AltaServerError("x", status=503), 1.0).pause >= 2  # waited out
    assert waiter.awake(3.0) is SEND
    step = waiter.received(_run("RUNNING"), 3.0)
    assert not step.send and step.run is None and step.pause == 2
    done = waiter.received(_run("FAILED"), 5.0)
    assert done.run.status.value == "FAILED" and not done.send
    with pytest.raises(AltaAuthError):  # not worth waiting out
        waiter.received(AltaAuthError("401", status=401), 6.0)


def test_run_waiter_begins_with_a_known_state():
    known = RunWaiter("r", PollSchedule(PollingSettings(min_interval=3, jitter=0), started_at=0.0), deadline=None)
    assert known.begin(_run("PENDING"), 0.0).pause == 3  # a full interval before the first query
    ended = RunWaiter("r", PollSchedule(PollingSettings(), started_at=0.0), deadline=None)
    assert ended.begin(_run("SUCCEED"), 0.0).run.status.value == "SUCCEED"  # no query at all


def test_run_waiter_holds_for_the_budget_and_stops_at_the_deadline():
    budget = RateBudget()
    budget.block(5.0, now=10.0)
    waiter = RunWaiter("r", PollSchedule(PollingSettings(), started_at=0.0, budget=budget), deadline=12.0)
    step = waiter.awake(10.0)
    assert not step.send and step.pause == 2.0  # the block, clamped to the deadline
    with pytest.raises(AltaTimeoutError, match="may still be running"):
        waiter.awake(12.5)


def test_a_wait_counts_as_a_poller_while_it_lasts():
    budget = RateBudget()
    waiter = RunWaiter.for_query("r", url=QUERY_URL, now=100.0, budget=budget, timeout=30.0)
    assert waiter.deadline == 130.0 and waiter.schedule.started_at == 100.0
    with pytest.raises(AltaTimeoutError), waiter:
        assert budget.snapshot().pollers == 1
        waiter.received(_run("RUNNING"), 131.0)
    assert budget.snapshot().pollers == 0
    with pytest.raises(AltaValidationError, match="timeout"):
        RunWaiter.for_query("r", url=QUERY_URL, now=0.0, timeout=-1)
