"""The polling schedule: adaptive spacing, the duration-aware first query, its settings."""

from __future__ import annotations

import math
import random

import pytest

from airflow_provider_alta._core.polling import PollingSettings, adaptive_interval, expected_duration, settings_for_run
from airflow_provider_alta._core.waiting import PollSchedule
from airflow_provider_alta.exceptions import (
    AltaValidationError,
)


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
