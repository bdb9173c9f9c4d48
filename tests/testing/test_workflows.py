"""Workflow settings over HTTP: the run-duration distribution, and settings refused with the reason."""

from __future__ import annotations

import statistics
import urllib.error

import pytest

from airflow_provider_alta.testing.client import EmulatorClient
from airflow_provider_alta.testing.runner import EmulatorThread
from tests.testing.wire import start_run


def durations(client: EmulatorClient, runs: int = 40) -> list[int]:
    """The workflow durations (ms) of ``runs`` new runs, in the order they started."""
    ids = [start_run(client.url, {"topic": str(i)})[2]["workflowRunId"] for i in range(runs)]
    return [client.run(run_id)["body"]["workflowExecutionTime"] for run_id in ids]


def test_duration_jitter_spreads_durations_from_a_seeded_sequence(alta_emulator):
    alta_emulator.configure(duration=10.0, duration_jitter=5.0, time_scale=0.0001)
    first = durations(alta_emulator)
    assert all(5000 <= ms <= 15000 for ms in first)
    assert len(set(first)) == len(first) and 7000 < statistics.mean(first) < 13000
    alta_emulator.reset()  # the sequence starts again
    alta_emulator.configure(duration=10.0, duration_jitter=5.0, time_scale=0.0001)
    assert durations(alta_emulator) == first


def test_another_seed_draws_another_sequence(alta_emulator):
    alta_emulator.configure(duration=10.0, duration_jitter=5.0, time_scale=0.0001)
    default_seed = durations(alta_emulator, 10)
    with EmulatorThread(seed=7) as server:
        other = EmulatorClient(server.url)
        other.configure(duration=10.0, duration_jitter=5.0, time_scale=0.0001)
        assert durations(other, 10) != default_seed


def test_a_jittered_duration_is_never_negative(alta_emulator):
    alta_emulator.configure(duration=0.001, duration_jitter=1.0)
    assert min(durations(alta_emulator, 20)) == 0


@pytest.mark.parametrize(
    "setting",
    [
        {"time_scale": 0},
        {"time_scale": -1},
        {"time_scale": "fast"},
        {"time_scale": True},
        {"duration_jitter": -0.5},
        {"duration_jitter": "wide"},
        {"outcome": "maybe"},
        {"webhook_copies": -1},
        {"no_such_setting": 1},
    ],
)
def test_a_bad_setting_is_refused(alta_emulator, setting):
    with pytest.raises(urllib.error.HTTPError) as refused:
        alta_emulator.configure(**setting)
    assert refused.value.code == 400
    assert next(iter(setting)) in refused.value.read().decode()
