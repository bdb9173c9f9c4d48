"""The batch's state machine, pure: a fake clock, made-up answers, no network."""

from __future__ import annotations

import random

import pytest

from airflow_provider_alta._core.batch_outcomes import StopReason
from airflow_provider_alta._core.batch_plan import BatchPlan, BatchSettings
from airflow_provider_alta._core.batch_progress import ItemStatus
from airflow_provider_alta._core.polling import PollingSettings
from airflow_provider_alta._core.ratelimit import RateBudget
from airflow_provider_alta._core.request_retry import RetrySettings
from airflow_provider_alta._core.waiting import OutageReport
from airflow_provider_alta.exceptions import (
    AltaAuthError,
    AltaInvalidRequestError,
    AltaNotFoundError,
    AltaRateLimitError,
    AltaServerError,
    AltaTransportError,
)
from airflow_provider_alta.models import WorkflowRun

POLLING = PollingSettings(min_interval=0.5, max_interval=10.0, jitter=0.0)


def plan_for(items: int, **settings) -> BatchPlan:
    plan = BatchPlan(BatchSettings(polling=POLLING, **settings), rng=random.Random(0))
    for index in range(items):
        plan.offer(index)
    plan.source_exhausted()
    return plan


def run(index: int, status: str = "PENDING", *, seconds: float = 2.0, cost: float = 1.0, tokens: int = 10):
    body = {"workflowRunId": f"r{index}", "status": status}
    if status in ("SUCCEED", "FAILED"):
        body.update(startTime=0, endTime=int(seconds * 1000), totalCost=cost, totalTokens=tokens)
    return WorkflowRun.from_response(body)


def concurrency_429(retry_after=None):
    return AltaRateLimitError("429", status=429, code="CONCURRENCY_LIMIT_EXCEEDED", retry_after=retry_after)


def test_starts_at_most_max_active_runs_and_refills_as_runs_end():
    plan = plan_for(5, max_active_runs=2)
    step = plan.step(0.0)
    assert step.invoke == (0, 1) and step.query == () and not step.done
    assert plan.step(0.0).invoke == ()  # both slots are taken by open invokes
    for index in (0, 1):
        assert plan.invoke_answered(index, run(index), 0.1) is None
    step = plan.step(0.1)
    assert step.invoke == () and step.wake_at == pytest.approx(0.6)  # no history: the first query after min_interval
    step = plan.step(0.6)
    assert step.query == ((0, "r0"), (1, "r1"))
    end = plan.query_answered(0, run(0, "SUCCEED"), 0.7)
    assert end is not None and end.status is ItemStatus.SUCCEED and end.workflow_run_id == "r0"
    assert plan.step(0.7).invoke == (2,)


def test_the_first_query_goes_out_when_the_batchs_runs_usually_end():
    plan = plan_for(3, max_active_runs=1)
    plan.step(0.0)
    plan.invoke_answered(0, run(0), 0.05)
    assert plan.step(0.55).query == ((0, "r0"),)
    plan.query_answered(0, run(0, "SUCCEED", seconds=2.0), 2.5)
    assert plan.step(2.5).invoke == (1,)
    plan.invoke_answered(1, run(1), 2.6)
    step = plan.step(2.6)
    assert step.query == () and step.wake_at == pytest.approx(4.6)  # answered at 2.6 + the 2 s runs take
    assert plan.step(4.6).query == ((1, "r1"),)


def test_a_run_still_going_is_queried_on_the_adaptive_schedule():
    plan = plan_for(1)
    plan.step(0.0)
    plan.invoke_answered(0, run(0), 0.0)
    plan.step(0.5)
    assert plan.query_answered(0, run(0, "RUNNING"), 0.5) is None
    assert plan.step(0.5).wake_at == pytest.approx(1.0)  # 9 % of 0.5 s is under min_interval
    plan.step(1.0)
    plan.query_answered(0, run(0, "RUNNING"), 50.0)
    assert plan.step(50.0).wake_at == pytest.approx(54.5)  # 9 % of the 50 s it has been going


def test_a_run_outlasting_its_first_query_is_queried_again_when_nearly_all_runs_had_ended():
    # Twenty runs of 1.6 s to 2.4 s: the first query goes out at their 85th percentile, a run still going then is
    # queried once more at their 99th, not a whole polling interval (here 10 s x 9 %) later.
    plan = plan_for(21, max_active_runs=1)
    now = 0.0
    for index in range(20):
        plan.step(now)
        plan.invoke_answered(index, run(index), now)
        seconds = 1.6 + 0.8 * index / 19
        plan.query_answered(index, run(index, "SUCCEED", seconds=seconds), now + seconds)
        now += seconds
    expected, late = plan.durations.expected(), plan.durations.latest()
    assert expected is not None and late is not None
    assert 2.2 < expected < 2.35 < late <= 2.4  # the 85th and the 99th percentiles (recomputed every few runs)
    assert plan.step(now).invoke == (20,)
    plan.invoke_answered(20, run(20), now)
    first = plan.step(now).wake_at
    assert first == pytest.approx(now + expected)
    assert plan.step(first).query == ((20, "r20"),)
    plan.query_answered(20, run(20, "RUNNING"), first)
    assert plan.step(first).wake_at == pytest.approx(now + late)
    assert plan.step(now + late).query == ((20, "r20"),)
    plan.query_answered(20, run(20, "RUNNING"), now + late)
    assert plan.step(now + late).wake_at == pytest.approx(now + late + 0.5)  # past both: the adaptive schedule


@pytest.mark.parametrize(
    ("error", "status", "invoked_again"),
    [
        (AltaInvalidRequestError("bad input", status=400, code="INVALID_INPUT"), ItemStatus.REFUSED, False),
        (AltaInvalidRequestError("too large", status=413), ItemStatus.REFUSED, False),
        (AltaInvalidRequestError("unprocessable", status=422), ItemStatus.REFUSED, False),
        (AltaServerError("500", status=500), ItemStatus.UNKNOWN, False),
        (AltaServerError("504", status=504), ItemStatus.UNKNOWN, False),
        (AltaTransportError("reset", sent=True), ItemStatus.UNKNOWN, False),
        (AltaServerError("503", status=503), None, True),
        (AltaTransportError("refused", sent=False), None, True),
        (AltaRateLimitError("quota", status=429, code="RATE_LIMITED"), None, True),
        (concurrency_429(), None, True),
    ],
)
def test_a_failed_invoke_ends_its_item_or_sends_it_again(error, status, invoked_again):
    plan = plan_for(1)
    plan.step(0.0)
    end = plan.invoke_failed(0, error, 0.0)
    assert (end.status if end else None) is status
    if end is not None:
        assert type(error).__name__ in end.error
    assert plan.step(0.0).invoke == ()  # never at once
    assert (plan.step(100.0).invoke == (0,)) is invoked_again
    assert plan.step(100.0).done is (not invoked_again)


def test_an_unknown_outcome_is_invoked_again_only_when_allowed():
    plan = plan_for(1, retry_on_unknown_outcome=True, retry=RetrySettings(max_attempts=2))
    plan.step(0.0)
    assert plan.invoke_failed(0, AltaServerError("500", status=500), 0.0) is None
    assert plan.step(100.0).invoke == (0,)
    end = plan.invoke_failed(0, AltaServerError("500", status=500), 100.0)
    assert end is not None and end.status is ItemStatus.UNKNOWN and "after 2 attempts" in end.error


def test_a_rejected_key_stops_the_batch_at_once():
    plan = plan_for(3, max_active_runs=2)
    plan.step(0.0)
    auth = AltaAuthError("401", status=401)
    assert plan.invoke_failed(0, auth, 0.0) is None
    assert plan.error is auth and plan.step(0.0).done


def test_a_concurrency_429_pauses_starts_until_the_open_invokes_measure_the_limit():
    plan = plan_for(20, max_active_runs=10, quiet_period=5.0)
    assert len(plan.step(0.0).invoke) == 10
    plan.invoke_failed(9, concurrency_429(), 0.01)  # the server holds as many runs as it allows
    for index in range(8):
        plan.invoke_answered(index, run(index), 0.02)
    assert plan.step(10.0).invoke == ()  # invoke 8 is still open: its answer tells too
    plan.invoke_failed(8, concurrency_429(), 10.0)
    assert plan.step(10.0).invoke == ()
    assert plan.concurrency.limit == 8  # the runs accepted and still open
    plan.query_answered(0, run(0, "SUCCEED"), 10.1)
    assert plan.step(10.1).invoke == (8,)  # the refused items go first
    assert plan.in_flight == 8


def test_the_limit_grows_back_after_a_quiet_period_never_above_max_active_runs():
    plan = plan_for(50, max_active_runs=4, quiet_period=5.0)
    plan.step(0.0)
    plan.invoke_failed(3, concurrency_429(), 0.0)
    for index in range(3):
        plan.invoke_answered(index, run(index), 0.0)
    plan.step(0.0)
    assert plan.concurrency.limit == 3
    for now in (2.0, 4.0):
        assert plan.step(now).invoke == ()
    assert plan.step(4.0).wake_at == pytest.approx(5.0)  # the quiet period's end
    step = plan.step(5.0)
    assert plan.concurrency.limit == 4 and len(step.invoke) == 1
    plan.step(30.0)
    assert plan.concurrency.limit == 4


def test_max_failed_items_stops_starting_and_lets_runs_in_flight_finish():
    plan = plan_for(10, max_active_runs=3, max_failed_items=1)
    plan.step(0.0)
    for index in range(3):
        plan.invoke_answered(index, run(index), 0.0)
    plan.step(0.5)
    plan.query_answered(0, run(0, "FAILED"), 0.6)
    assert plan.stop_reason is None and plan.step(0.6).invoke == (3,)
    plan.query_answered(1, run(1, "FAILED"), 0.7)
    assert plan.stop_reason is StopReason.MAX_FAILED_ITEMS
    step = plan.step(0.7)
    assert step.invoke == () and not step.done and plan.in_flight == 2
    plan.query_answered(2, run(2, "SUCCEED"), 0.8)
    plan.invoke_answered(3, run(3, "SUCCEED"), 0.8)
    assert plan.step(0.8).done and plan.tally.failures == 2 and plan.tally.succeeded == 2


def test_max_cost_runs_one_at_a_time_until_a_run_tells_its_cost_then_stays_within_it():
    plan = plan_for(10, max_active_runs=5, max_cost=3.5)
    assert plan.step(0.0).invoke == (0,)
    plan.invoke_answered(0, run(0, "SUCCEED", cost=1.0), 0.1)
    assert plan.step(0.1).invoke == (1, 2)  # 1 spent, 2 more expected to cost 2: within 3.5
    plan.invoke_answered(1, run(1, "SUCCEED", cost=1.0), 0.2)
    plan.invoke_answered(2, run(2, "SUCCEED", cost=1.0), 0.2)
    step = plan.step(0.2)
    assert step.invoke == () and step.done and plan.stop_reason is StopReason.MAX_COST
    assert plan.tally.cost == 3.0


def test_max_tokens_stops_when_reached():
    plan = plan_for(10, max_active_runs=5, max_tokens=20)
    plan.step(0.0)
    plan.invoke_answered(0, run(0, "SUCCEED", tokens=10), 0.0)
    assert plan.step(0.0).invoke == (1,)
    plan.invoke_answered(1, run(1, "SUCCEED", tokens=10), 0.0)
    assert plan.step(0.0).done and plan.stop_reason is StopReason.MAX_TOKENS


def test_reattached_runs_are_queried_at_once_and_never_invoked():
    plan = BatchPlan(BatchSettings(polling=POLLING), rng=random.Random(0))
    plan.reattach(7, "r7", 0.0)
    plan.source_exhausted()
    assert plan.step(0.0).query == ((7, "r7"),)
    end = plan.query_failed(7, AltaNotFoundError("404", status=404), 0.1)
    assert end is not None and end.status is ItemStatus.UNKNOWN and "r7" in end.error
    assert plan.step(0.1).done


def test_a_new_run_may_be_unknown_for_a_moment_before_it_counts_as_unknown():
    plan = plan_for(1)
    plan.step(0.0)
    plan.invoke_answered(0, run(0), 0.0)
    for now in (1.0, 10.0):
        plan.step(now)
        assert plan.query_failed(0, AltaNotFoundError("404", status=404), now) is None
    plan.step(100.0)
    assert plan.query_failed(0, AltaNotFoundError("404", status=404), 100.0).status is ItemStatus.UNKNOWN


def test_transient_query_failures_are_waited_out_and_an_outage_past_the_bound_stops_the_batch():
    outage = OutageReport("http://alta/v1/workflow/query/result")
    plan = BatchPlan(
        BatchSettings(polling=POLLING, retry=RetrySettings(max_wait=60.0)), outage=outage, rng=random.Random(0)
    )
    plan.reattach(0, "r0", 0.0)
    plan.source_exhausted()
    now = 0.0
    while True:
        step = plan.step(now)
        assert step.query == ((0, "r0"),)
        plan.query_failed(0, AltaServerError("502", status=502), now)
        if plan.error is not None:
            break
        now = plan.step(now).wake_at
    assert now > 60 and isinstance(plan.error, AltaServerError)
    assert plan.notices and "still failing" in plan.notices[-1].message


def test_the_shared_budget_spaces_requests_and_a_long_spent_window_stops_resumably():
    budget = RateBudget()
    budget.block(30.0, now=0.0)
    plan = BatchPlan(BatchSettings(polling=POLLING), budget=budget, rng=random.Random(0))
    plan.offer(0)
    step = plan.step(0.0)
    assert step.invoke == () and step.wake_at == pytest.approx(30.0)
    assert plan.step(30.0).invoke == (0,)
    budget.block(3600.0, now=31.0)
    plan.offer(1)
    assert plan.step(31.0).done and isinstance(plan.error, AltaRateLimitError)
    assert "resumes" in str(plan.error)


def test_a_key_full_of_other_runs_backs_off_instead_of_retrying_at_once():
    plan = plan_for(1)
    plan.step(0.0)
    plan.invoke_failed(0, concurrency_429(), 0.0)
    step = plan.step(0.0)
    assert step.invoke == () and step.wake_at > 0.0
    assert plan.step(step.wake_at).invoke == (0,)


def test_a_synchronous_looking_answer_ends_the_item_at_once():
    plan = plan_for(1)
    plan.step(0.0)
    end = plan.invoke_answered(0, run(0, "FAILED"), 0.0)
    assert end.status is ItemStatus.FAILED and end.error == "the workflow run ended FAILED"
    assert plan.step(0.0).done
