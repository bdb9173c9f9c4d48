"""The batch's figures and progress lines, its argument checks and its query schedule (pure)."""

from __future__ import annotations

import random

import pytest

from airflow_provider_alta._core.batch_arguments import (
    ensure_max_failed_items,
    ensure_whole_number,
    failure_threshold,
    input_format_for,
)
from airflow_provider_alta._core.batch_progress import ItemStatus, ProgressLog, Tally, duration_text
from airflow_provider_alta._core.batch_schedule import DueQueue, DurationEstimate, next_query_at, run_seconds
from airflow_provider_alta._core.polling import PollingSettings
from airflow_provider_alta.exceptions import AltaValidationError
from airflow_provider_alta.models import WorkflowRun


def test_a_progress_line_is_due_every_ten_seconds_or_each_five_percent():
    progress = ProgressLog(1000, started_at=0.0)
    assert not progress.due(10, 1.0)  # 1 % after 1 s
    assert progress.due(50, 2.0)  # 5 %
    assert not progress.due(60, 5.0)
    assert progress.due(61, 12.5)  # 10 s after the last line
    assert not progress.due(61, 40.0)  # nothing new: nothing to say


def test_a_progress_line_tells_counts_spend_rate_and_eta():
    tally = Tally()
    for status in [ItemStatus.SUCCEED] * 8 + [ItemStatus.FAILED, ItemStatus.REFUSED]:
        tally.add(status, 0.5 if status is not ItemStatus.REFUSED else None, 100)
    progress = ProgressLog(100, started_at=0.0, done_before=0)
    line = progress.line(tally, in_flight=5, limit=8, now=5.0)
    assert line == (
        "Alta batch: 10/100 items done (10.0 %), 2 failed, 5 in flight (limit 8), 4.50 credits, 1,000 tokens so far, "
        "2.0 items/s, ETA 45 s"
    )
    assert tally.to_dict()["failed"] == 2 and tally.costed_runs == 9


def test_the_rate_counts_this_try_only():
    progress = ProgressLog(100, started_at=100.0, done_before=60)
    assert progress.rate(70, 110.0) == 1.0


@pytest.mark.parametrize(("seconds", "text"), [(42.4, "42 s"), (200, "3 min 20 s"), (7500, "2 h 05 min")])
def test_durations_read_as_people_write_them(seconds, text):
    assert duration_text(seconds) == text


@pytest.mark.parametrize(
    ("value", "total", "threshold"), [(None, 10, None), (0, 10, 0), (3, 10, 3), (0.05, 1000, 50), (0.5, 3, 1)]
)
def test_max_failed_items_is_a_count_or_a_fraction(value, total, threshold):
    assert failure_threshold(ensure_max_failed_items(value), total) == threshold


@pytest.mark.parametrize("value", [-1, 1.5, float("nan"), True, "5"])
def test_bad_max_failed_items(value):
    with pytest.raises(AltaValidationError, match="max_failed_items"):
        ensure_max_failed_items(value)


def test_whole_numbers():
    assert ensure_whole_number(3, "max_active_runs") == 3
    for bad in (0, 2.5, True):
        with pytest.raises(AltaValidationError, match="max_active_runs must be a whole number >= 1"):
            ensure_whole_number(bad, "max_active_runs")


@pytest.mark.parametrize(
    ("path", "given", "found"),
    [("s3://b/x.jsonl", None, "jsonl"), ("/x/y.NDJSON.gz", None, "jsonl"), ("x.csv", None, "csv"), ("x", "csv", "csv")],
)
def test_the_input_format_comes_from_the_name_or_the_argument(path, given, found):
    assert input_format_for(path, given) == found


def test_an_unknown_input_format_is_an_error_naming_the_fix():
    with pytest.raises(AltaValidationError, match="input_format"):
        input_format_for("data.parquet", None)
    with pytest.raises(AltaValidationError, match="must be one of jsonl, csv"):
        input_format_for("data.csv", "xml")


def test_run_durations_by_the_servers_clock_then_by_execution_time():
    timed = WorkflowRun.from_response({"workflowRunId": "r", "status": "SUCCEED", "startTime": 1000, "endTime": 1020})
    assert run_seconds(timed) == pytest.approx(0.02)  # an emulator on time_scale says 2000 ms for 20 ms
    only = WorkflowRun.from_response({"workflowRunId": "r", "status": "SUCCEED", "workflowExecutionTime": 2000})
    assert run_seconds(only) == 2.0


def test_the_expected_duration_is_a_high_quantile_of_the_batchs_runs():
    estimate = DurationEstimate(0.85)
    assert estimate.expected() is None
    for ms in range(1000, 3000, 20):  # 100 runs of 1 to 3 s
        body = {"workflowRunId": "r", "status": "SUCCEED", "workflowExecutionTime": ms}
        estimate.observe(WorkflowRun.from_response(body))
    assert estimate.expected() == pytest.approx(2.7)


def test_the_first_query_at_the_expected_end_then_adaptive():
    polling = PollingSettings(min_interval=1.0, jitter=0.0)
    rng = random.Random(0)
    kwargs = {"sent_at": 0.0, "accepted_at": 0.2, "polling": polling, "rng": rng}
    assert next_query_at(now=0.2, first=True, expected=2.0, **kwargs) == 2.2
    assert next_query_at(now=1.0, first=False, expected=2.0, **kwargs) == 2.0
    assert next_query_at(now=2.2, first=False, expected=2.0, **kwargs) == 3.2
    assert next_query_at(now=0.2, first=True, expected=None, **kwargs) == 1.2


def test_the_due_queue_orders_by_time():
    queue = DueQueue()
    for index, due in ((1, 5.0), (2, 1.0), (3, 3.0)):
        queue.push(index, due)
    order = []
    while queue.peek() is not None:
        order.append(queue.peek()[1])
        queue.pop()
    assert order == [2, 3, 1] and len(queue) == 0
