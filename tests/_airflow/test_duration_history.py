"""The duration history: what a task reads back of its earlier runs' times, and the schedule it makes of them.

A task reads its history through its channel to the supervisor (a slice request, which answers an empty list instead
of logging an error for a missing XCom) or, where that channel cannot be asked so, with a plain pull. Here the
channel is a stand-in that answers as a supervisor holding those XComs does; the dag.test() suites
(tests/operators) read real histories.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from airflow.sdk.execution_time import task_runner

from airflow_provider_alta._airflow.duration_history import HISTORY_POOL, recent_durations, schedule_for_run
from airflow_provider_alta._core.finish_plan import XCOM_RECENT_DURATIONS
from airflow_provider_alta._core.polling import PollingSettings

LOG = logging.getLogger(__name__)
#: What a history may hold besides execution times: none of it is a time.
JUNK = ["x", True, -5, 0, None, {"ms": 1}]


class TaskInstance:
    """A task instance as the history reads it: its ids, and its own latest XCom (a pull)."""

    dag_id, run_id, task_id = "d", "manual__2", "t"

    def __init__(self, map_index: int | None, latest: Any = None) -> None:
        self.map_index = map_index
        self.latest = latest
        self.pulls: list[dict[str, Any]] = []

    def xcom_pull(self, **kwargs: Any) -> Any:
        self.pulls.append(kwargs)
        return self.latest


class Supervisor:
    """The task's channel to its supervisor, answering slice requests with the histories the task pushed."""

    def __init__(self, histories: list[Any]) -> None:
        self.histories = histories
        self.requests: list[Any] = []

    def send(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import XComSequenceSliceResult

        self.requests.append(msg)
        return XComSequenceSliceResult(root=self.histories[: msg.stop])


@pytest.fixture
def supervisor(monkeypatch) -> Any:
    def answering(histories: list[Any]) -> Supervisor:
        channel = Supervisor(histories)
        monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", channel, raising=False)
        return channel

    return answering


def test_without_a_channel_to_ask_the_task_pulls_its_latest_history(monkeypatch):
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", None, raising=False)
    ti = TaskInstance(map_index=-1, latest=[9000, 11000.5, *JUNK])
    assert recent_durations(ti) == [9000.0, 11000.5]
    (pull,) = ti.pulls
    assert (pull["key"], pull["include_prior_dates"], pull["task_ids"]) == (XCOM_RECENT_DURATIONS, True, "t")
    assert recent_durations(TaskInstance(map_index=-1, latest="not a history")) == []


def test_a_mapped_instance_pools_the_histories_of_its_task(supervisor):
    channel = supervisor([[1000, 2000], "junk", [3000, *JUNK], *([[4000]] * 30)])
    ti = TaskInstance(map_index=3, latest="never pulled")
    assert recent_durations(ti) == [1000.0, 2000.0, 3000.0] + [4000.0] * (HISTORY_POOL - 3)
    (request,) = channel.requests
    assert (request.key, request.stop, request.include_prior_dates) == (XCOM_RECENT_DURATIONS, HISTORY_POOL, True)
    assert ti.pulls == []


def test_an_unmapped_instance_takes_its_own_latest_history(supervisor):
    supervisor([[1000], [2000]])
    ti = TaskInstance(map_index=-1, latest=[5000])
    assert recent_durations(ti) == [5000.0] and len(ti.pulls) == 1


@pytest.mark.parametrize("map_index", [-1, 2])
def test_a_first_run_has_no_history_and_pulls_nothing(supervisor, map_index):
    supervisor([])
    ti = TaskInstance(map_index=map_index, latest="a pull would log an Airflow error")
    assert recent_durations(ti) == [] and ti.pulls == []


BASE = PollingSettings(min_interval=1.0, max_interval=300.0, ratio=0.09)


@pytest.mark.parametrize(
    ("history", "fallback", "expected", "line"),
    [
        ([], None, None, None),
        ([12000.0, 30000.0], None, 12.0, "Earlier runs took 12.0 to 30.0 s: first query after 12.0 s"),
        ([12000.0, 30000.0], 60.0, 90.0, "Earlier runs took 12.0 to 30.0 s: first query after 90.0 s"),
        ([], 60.0, None, None),
    ],
)
def test_the_first_query_goes_out_when_the_run_is_expected_to_end(caplog, history, fallback, expected, line):
    with caplog.at_level(logging.INFO):
        settings = schedule_for_run(BASE, history, fallback, LOG)
    assert settings.expected_duration == expected
    assert settings.min_interval == (60.0 if fallback else 1.0)  # a webhook's fallback polls are spaced out
    assert [r.getMessage() for r in caplog.records] == ([line] if line else [])
