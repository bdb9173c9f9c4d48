"""The version matrix's queue (scripts/matrix.py): which suites run side by side, and that every one runs."""

from __future__ import annotations

import threading
from types import ModuleType

import pytest

from tests.test_packaging import _script


@pytest.fixture(scope="module")
def matrix() -> ModuleType:
    return _script("matrix")


def _jobs(matrix: ModuleType) -> list:
    oldest, *_, newest = matrix.RELEASES
    jobs = [matrix.Job(release, "unit") for release in matrix.RELEASES[:3]]
    jobs += [matrix.Job(python, "python") for python in matrix.PYTHONS]
    jobs += [matrix.Job(release, suite) for release in (oldest, newest) for suite in ("cli", "e2e")]
    return jobs


def test_the_e2e_and_production_shape_suites_run_alone(matrix):
    release = matrix.RELEASES[0]
    unit, cli, e2e, python = (matrix.Job(release, suite) for suite in ("unit", "cli", "e2e", "python"))
    other_e2e = matrix.Job(matrix.RELEASES[-1], "e2e")
    assert e2e.may_start_beside([])
    for other in (unit, python, cli, other_e2e):
        assert not e2e.may_start_beside([other]) and not other.may_start_beside([e2e])
    assert cli.may_start_beside([cli, unit]) and unit.may_start_beside([unit, unit]) and unit.may_start_beside([python])
    distributed = matrix.Job(release, "distributed")
    assert distributed.may_start_beside([]) and not distributed.may_start_beside([unit])
    assert not unit.may_start_beside([distributed])


def test_the_queue_runs_every_suite_once_within_its_slots_and_rules(matrix):
    jobs = _jobs(matrix)
    lock = threading.Lock()
    running: list = []
    seen: list = []
    violations: list = []

    def run_one(job):
        with lock:
            if len(running) >= 2 or not job.may_start_beside(list(running)):
                violations.append((job, list(running)))
            running.append(job)
            seen.append(job)
        with lock:
            running.remove(job)
        return matrix.Outcome(job.release.name, job.suite, passed=1, returncode=0)

    finished = matrix.run_queue(jobs, 2, run_one)
    assert violations == []
    assert sorted(map(repr, seen)) == sorted(map(repr, jobs)) and set(finished) == set(jobs)
    assert all(finished[job].suites == job.suite for job in jobs)
    # Longest first: the first suite started is the longest of all.
    assert seen[0].minutes == max(job.minutes for job in jobs)
