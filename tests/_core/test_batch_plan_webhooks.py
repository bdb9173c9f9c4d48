"""The batch's state machine with webhook deliveries, pure: a fake clock, made-up answers and deliveries."""

from __future__ import annotations

import pytest

from airflow_provider_alta._core.batch_progress import ItemStatus
from tests._core.test_batch_plan import plan_for, run


def webhook_plan(items: int, **settings):
    return plan_for(items, webhooks=True, webhook_fallback=60.0, **settings)


def test_a_delivery_ends_its_item_without_a_query():
    plan = webhook_plan(3, max_active_runs=2)
    assert plan.step(0.0).invoke == (0, 1)
    plan.invoke_answered(0, run(0), 0.1)
    plan.invoke_answered(1, run(1), 0.1)
    step = plan.step(0.1)
    assert step.query == () and step.wake_at == pytest.approx(60.1)  # only a lost delivery is ever queried
    end = plan.notice(0, run(0, "SUCCEED"), 2.0)
    assert end is not None and end.status is ItemStatus.SUCCEED and end.workflow_run_id == "r0"
    assert plan.step(2.0).invoke == (2,)  # the slot is free at once
    assert plan.tally.succeeded == 1 and plan.tally.cost == 1.0


def test_a_lost_delivery_is_caught_by_the_fallback_query():
    plan = webhook_plan(1)
    plan.step(0.0)
    plan.invoke_answered(0, run(0), 0.0)
    assert plan.step(59.9).query == ()
    assert plan.step(60.0).query == ((0, "r0"),)
    plan.query_answered(0, run(0, "RUNNING"), 60.1)
    assert plan.step(60.1).wake_at == pytest.approx(120.1)  # still going: the next fallback a whole interval later
    end = plan.query_answered(0, run(0, "FAILED"), 120.2) if plan.step(120.1).query else None
    assert end is not None and end.status is ItemStatus.FAILED


def test_a_delivery_before_the_invoke_answer_ends_the_item_at_the_answer():
    plan = webhook_plan(1)
    plan.step(0.0)
    assert plan.notice(0, run(0, "SUCCEED"), 0.5) is None  # the invoke is open: its answer names the run
    end = plan.invoke_answered(0, run(0), 0.6)
    assert end is not None and end.status is ItemStatus.SUCCEED
    assert plan.step(0.6).done


def test_deliveries_that_name_another_run_or_no_end_change_nothing():
    plan = webhook_plan(1)
    plan.step(0.0)
    plan.invoke_answered(0, run(0), 0.0)
    assert plan.notice(0, run(9, "SUCCEED"), 1.0) is None  # another run: never this item's result
    assert plan.notice(0, run(0, "RUNNING"), 1.0) is None  # not an end
    assert plan.notice(5, run(5, "SUCCEED"), 1.0) is None  # no such item in flight
    assert plan.in_flight == 1 and plan.tally.done == 0


def test_confirm_webhooks_queries_the_run_a_delivery_names():
    plan = webhook_plan(1, confirm_webhooks=True)
    plan.step(0.0)
    plan.invoke_answered(0, run(0), 0.0)
    assert plan.notice(0, run(0, "SUCCEED"), 2.0) is None
    assert plan.step(2.0).query == ((0, "r0"),)
    end = plan.query_answered(0, run(0, "SUCCEED"), 2.1)
    assert end is not None and end.status is ItemStatus.SUCCEED


def test_a_lost_invoke_is_named_by_its_delivery_or_ends_unknown_after_the_fallback():
    plan = webhook_plan(0)
    plan.await_delivery(7, 0.0)
    plan.await_delivery(8, 0.0)
    assert plan.awaits_delivery(7) and plan.in_flight == 2
    end = plan.notice(7, run(7, "SUCCEED"), 1.0)
    assert end is not None and end.status is ItemStatus.SUCCEED and end.workflow_run_id == "r7"
    assert not plan.step(59.0).done
    step = plan.step(60.0)
    (ended,) = step.ended
    assert ended.index == 8 and ended.status is ItemStatus.UNKNOWN and "within 60 s" in (ended.error or "")
    assert step.query == () and step.done
    assert (plan.tally.succeeded, plan.tally.unknown) == (1, 1)


def test_a_delivery_while_a_query_is_open_waits_for_the_query():
    plan = webhook_plan(1)
    plan.step(0.0)
    plan.invoke_answered(0, run(0), 0.0)
    assert plan.step(60.0).query == ((0, "r0"),)
    assert plan.notice(0, run(0, "SUCCEED"), 60.05) is None  # the query in flight will answer
    end = plan.query_answered(0, run(0, "SUCCEED"), 60.1)
    assert end is not None and plan.tally.succeeded == 1
