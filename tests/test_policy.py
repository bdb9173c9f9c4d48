"""The pure policies: adaptive polling, the wait's state machine, the shared rate budget."""

from __future__ import annotations

import logging
import math
import random

import pytest

from airflow_provider_alta._core.polling import PollingSettings, adaptive_interval, expected_duration, settings_for_run
from airflow_provider_alta._core.protocol import parse_rate_limit, parse_retry_after
from airflow_provider_alta._core.ratelimit import RateBudget, key_fingerprint
from airflow_provider_alta._core.request_retry import RetrySettings, budget_wait
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


def test_a_request_waits_for_the_budget_only_as_long_as_retries_may():
    budget = RateBudget()
    assert budget_wait(budget, RetrySettings()) == 0  # nothing known: send now
    budget.block(30.0)
    assert 29 < budget_wait(budget, RetrySettings(max_wait=60)) <= 30
    with pytest.raises(AltaRateLimitError, match="nothing was sent") as err:
        budget_wait(budget, RetrySettings(max_wait=10))
    assert err.value.retry_after is not None and err.value.retry_after > 29


def test_retry_headers_parsed():
    assert parse_retry_after({"retry-after": "3"}) == 3
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0) == 10
    assert parse_retry_after({}) is None
    info = parse_rate_limit({"x-ratelimit-limit": "100", "X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "1700"})
    assert (info.limit, info.remaining, info.reset_at) == (100, 7, 1700.0)


def test_adaptive_interval_is_a_clamped_fraction_of_elapsed():
    s = PollingSettings(min_interval=1, max_interval=300, ratio=0.1, jitter=0)
    assert adaptive_interval(0, s) == 1
    assert adaptive_interval(50, s) == 5
    assert adaptive_interval(10_000, s) == 300
    jittered = PollingSettings(ratio=0.1, jitter=0.2)
    values = [adaptive_interval(100, jittered, random.Random(i)) for i in range(50)]
    assert all(8 <= v <= 10 for v in values) and len(set(values)) > 1


def test_query_count_grows_logarithmically():
    s = PollingSettings(jitter=0)
    t, queries = 0.0, 0
    while t < 3600:
        t += adaptive_interval(t, s)
        queries += 1
    assert queries < 90  # fixed 5 s polling needs 720
    assert t - 3600 <= 360  # detected within 10 % of the duration


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_interval": 0},
        {"min_interval": -1},
        {"max_interval": 0.5, "min_interval": 1},
        {"ratio": 0},
        {"jitter": 1.5},
        {"max_consecutive_failures": 0},
        {"min_interval": math.inf},
    ],
)
def test_bad_polling_settings(kwargs):
    with pytest.raises(AltaValidationError):
        PollingSettings(**kwargs)


def test_budget_shares_remaining_quota_between_pollers():
    budget = RateBudget()
    budget.observe(
        parse_rate_limit({"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "50", "X-RateLimit-Reset": "1060"})
    )
    for _ in range(10):
        budget.register_poller()
    # 45 usable requests (5 % reserve) over 60 s for 10 pollers: each waits 60 * 10 / 45 s.
    assert budget.poll_spacing(now=1000) == pytest.approx(60 * 10 / 45)
    for _ in range(45):
        assert budget.acquire(now=1000) == 0
    assert budget.acquire(now=1000) == pytest.approx(60)  # reserve reached: wait for the window
    assert budget.acquire(now=1000, for_poll=False) == 0  # an invoke may still use the reserve
    assert budget.acquire(now=1061) == 0  # new window


def test_starved_pollers_wait_for_the_new_window_not_beyond_it():
    budget = RateBudget()
    budget.observe(
        parse_rate_limit({"X-RateLimit-Limit": "80", "X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "1009"})
    )
    for _ in range(50):
        budget.register_poller()
    # 1 usable request for 50 pollers: spreading them over this window would mean 450 s; the window ends in 9 s.
    assert budget.poll_spacing(now=1000) == pytest.approx(9)


def test_budget_retry_after_blocks_everyone_and_stale_figures_never_raise_remaining():
    budget = RateBudget()
    budget.block(5, now=100)
    assert budget.acquire(now=101) == pytest.approx(4)
    assert budget.acquire(now=106) == 0
    budget.observe(parse_rate_limit({"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": "500"}))
    budget.observe(parse_rate_limit({"X-RateLimit-Remaining": "12", "X-RateLimit-Reset": "500"}))
    assert budget.snapshot().remaining == 10


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


def test_fingerprint_hides_key():
    fp = key_fingerprint("https://altatech.ai/", "sk-secret")
    assert "sk-secret" not in fp and fp == key_fingerprint("https://altatech.ai", "sk-secret")


def test_expected_duration_from_history():
    settings = PollingSettings()
    assert expected_duration([], settings) is None
    assert expected_duration([60.0, 57.0, 63.0], settings) == 57.0  # polling alone: the shortest
    # With a webhook, the first fallback query waits one interval past the longest recent run.
    assert expected_duration([60.0, 57.0, 63.0], settings, webhook_fallback=60.0) == 63.0 + 60.0
    assert expected_duration([3600.0], settings, webhook_fallback=60.0) == pytest.approx(3600.0 + 0.09 * 3600)


def _first_end_seen(duration: float, settings: PollingSettings) -> tuple[int, float]:
    schedule = PollSchedule(settings, started_at=0.0, rng=random.Random(3))
    t, queries = 0.0, 0
    while t < duration:
        t += schedule.delay_after_status(t)
        queries += 1
    return queries, t - duration


def test_duration_aware_schedule_queries_at_the_expected_end_then_adapts():
    settings = PollingSettings(expected_duration=600.0)
    schedule = PollSchedule(settings, started_at=0.0, rng=random.Random(1))
    assert schedule.delay_after_status(0.0) == 600.0  # one wait, no jitter, however long
    assert schedule.delay_after_status(599.5) == 1.0  # never below min_interval
    assert schedule.delay_after_status(600.0) == pytest.approx(54.0, rel=0.1)  # adaptive from there
    queries, delay = _first_end_seen(610.0, settings)
    assert queries == 2 and delay <= 0.1 * 610
    # A run that grows keeps the usual bound.
    for duration in (700.0, 1200.0, 1800.0):
        _, delay = _first_end_seen(duration, settings)
        assert delay <= 0.09 / 0.91 * duration + 1e-6


def test_settings_for_run_spaces_fallback_polls_and_sets_the_expected_end():
    base = PollingSettings(min_interval=0.5, max_interval=30.0)
    assert settings_for_run(base, []) == base
    assert settings_for_run(base, [40.0, 50.0]).expected_duration == 40.0
    hooked = settings_for_run(base, [], webhook_fallback=60.0)
    assert (hooked.min_interval, hooked.max_interval, hooked.expected_duration) == (60.0, 60.0, None)
    assert settings_for_run(base, [40.0, 50.0], webhook_fallback=60.0).expected_duration == 110.0


def _share_one_key(budgets: list[tuple[RateBudget, int]], *, limit: int, window: float, until: float) -> list[int]:
    """Pollers in several processes (one budget each) polling one key's fixed window; the server's count at
    every tenth of ``until``. Each answer carries the server's figures, as Alta's do."""
    server = {"used": 0}
    due = []
    for budget, pollers in budgets:
        for _ in range(pollers):
            budget.register_poller()
        due += [[0.0, budget] for _ in range(pollers)]
    marks: list[int] = []
    while (now := min(entry[0] for entry in due)) < until:
        for entry in due:
            if entry[0] > now:
                continue
            budget = entry[1]
            wait = budget.acquire(now)
            if wait > 0:
                entry[0] = now + wait
                continue
            assert server["used"] < limit, "a request the key could not pay for (429)"
            server["used"] += 1
            headers = {
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": str(limit - server["used"]),
                "X-RateLimit-Reset": str(int(window)),
            }
            budget.observe(parse_rate_limit(headers))
            entry[0] = now + max(1.0, budget.poll_spacing(now))
        while len(marks) < 10 and now >= (len(marks) + 1) * until / 10:
            marks.append(server["used"])
    return [*marks, *[server["used"]] * (10 - len(marks))]


class _PerProcessOnly(RateBudget):
    """The budget without the share estimate: each process spaces polls for its own pollers only."""

    def _share(self) -> float:
        return 1.0


@pytest.mark.parametrize("processes", [[50, 50], [48, 48, 1, 1, 1, 1]])
def test_processes_sharing_one_key_keep_the_even_pace_together(processes):
    """Two triggerers (and a worker's task processes) on one 1,000/h key: together they spend the window at the
    pace one process alone would, instead of each at its own full rate."""
    shared = _share_one_key([(RateBudget(), n) for n in processes], limit=1000, window=3600, until=3599)
    alone = _share_one_key([(_PerProcessOnly(), n) for n in processes], limit=1000, window=3600, until=3599)
    half, four_fifths = 4, 7  # the server's count at 50 % and 80 % of the window
    assert shared[half] <= 0.6 * 1000 and shared[four_fifths] <= 0.9 * 950, shared
    assert shared[-1] >= 0.8 * 950, shared  # the window's requests are still used, only spread
    # Per process only, each spends at its own full rate: the key is dry long before the window ends.
    assert alone[four_fifths] >= 940, alone


def test_a_process_learns_its_share_of_the_keys_traffic():
    budget = RateBudget()
    budget.observe(parse_rate_limit({"X-RateLimit-Remaining": "900", "X-RateLimit-Reset": "3600"}))
    assert budget.share() == 1.0
    for _ in range(5):
        budget.acquire(now=0)
    # The server counted 20 requests meanwhile, 5 of them ours: a quarter of the key's traffic.
    budget.observe(parse_rate_limit({"X-RateLimit-Remaining": "880", "X-RateLimit-Reset": "3600"}))
    assert budget.share() == pytest.approx(0.25)
    budget.register_poller()
    assert budget.poll_spacing(now=0) == pytest.approx(3600 * 4 / 880)  # it spaces polls for 4 pollers
    assert budget.acquire(now=3601) == 0 and budget.share() == 1.0  # a new window starts afresh
