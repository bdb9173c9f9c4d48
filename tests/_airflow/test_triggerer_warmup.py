"""The one read that has a triggerer's supervisor build its in-process Execution API before a run ends."""

from __future__ import annotations

import asyncio
import logging

import pytest
from airflow.sdk.execution_time import task_runner

from airflow_provider_alta._airflow.triggerer_finish import TriggererFinish
from airflow_provider_alta._airflow.triggerer_warmup import prepare_supervisor

FINISH = TriggererFinish(dag_id="d", run_id="manual__1", task_id="t", map_index=-1, conn_id="alta_default", push=True)
log = logging.getLogger(__name__)
READY = "supervisor is ready to end tasks here"


async def _prepare_twice_then_wait() -> list[bool]:
    started = [prepare_supervisor(FINISH, log), prepare_supervisor(FINISH, log)]
    await asyncio.gather(*(t for t in asyncio.all_tasks() if t.get_name() == "alta-triggerer-warmup"))
    return started


def test_one_read_per_triggerer_event_loop(airflow_db, caplog):
    caplog.set_level(logging.INFO, logger=__name__)
    assert asyncio.run(_prepare_twice_then_wait()) == [True, False]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len([r for r in caplog.records if READY in r.getMessage()]) == 1
    # A new event loop is a new triggerer process's: it is prepared again.
    assert asyncio.run(_prepare_twice_then_wait()) == [True, False]
    assert len([r for r in caplog.records if READY in r.getMessage()]) == 2


class _RefusingChannel:
    """Stands in for a triggerer's supervisor channel that fails every request."""

    def send(self, msg):
        raise ConnectionResetError("supervisor gone")

    async def asend(self, msg):
        raise ConnectionResetError("supervisor gone")


def test_a_failed_read_is_a_warning_not_an_error(caplog, monkeypatch):
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", _RefusingChannel(), raising=False)
    caplog.set_level(logging.INFO, logger=__name__)
    assert asyncio.run(_prepare_twice_then_wait()) == [True, False]
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "could not be prepared" in warning.getMessage()
    assert "ConnectionResetError: supervisor gone" in warning.getMessage()
    assert not [r for r in caplog.records if READY in r.getMessage()]


def test_needs_a_running_event_loop():
    with pytest.raises(RuntimeError):
        prepare_supervisor(FINISH, log)
