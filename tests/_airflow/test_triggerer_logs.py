"""A trigger that ends its task has the triggerer read the run's closing line before anything lets the task end.

Airflow's triggerer writes a trigger's lines to the task's log only while the trigger runs: lines still unread in
its log socket when the trigger's end reaches the supervisor go to the triggerer's own output (see
:mod:`airflow_provider_alta._airflow.triggerer_logs`). Here the log socket is a real one, read when the test says so,
the run is the emulator's, and the trigger's channel to the supervisor is a stand-in that answers its requests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from airflow.sdk.execution_time import task_runner
from airflow.triggers.base import TaskSuccessEvent

from airflow_provider_alta._airflow.triggerer_finish import TriggererFinish
from airflow_provider_alta._airflow.triggerer_logs import log_sockets, wait_until_read
from airflow_provider_alta.hooks.alta import AltaHook
from airflow_provider_alta.triggers.alta import AltaWorkflowRunTrigger

pytestmark = pytest.mark.usefixtures("alta_conn")

FAST = {"min_interval": 0.05, "max_interval": 0.2, "jitter": 0.0}
FINISH = TriggererFinish(
    dag_id="d", run_id="manual__1", task_id="t", map_index=-1, conn_id="alta_default", push=True, forget_variable="v"
)
CLOSING = b"ended SUCCEED in 15.0 s: cost 0.6928 credits, 1745 tokens"
ENDS_HERE = b"d/manual__1/t ends here, in the triggerer"


class TriggerCommsDecoder:
    """Stands in for the triggerer's channel to its supervisor (Airflow's class of this name, by which
    ``internals.in_triggerer()`` knows a triggerer): it keeps each request and answers it as a supervisor that stored it
    does, connections from the environment."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    def send(self, msg: Any) -> Any:
        self.requests.append(msg)
        kind = type(msg).__name__
        if kind == "GetXCom":
            from airflow.sdk.execution_time.comms import XComResult

            return XComResult(key=msg.key, value=None)
        if kind == "GetConnection":
            from airflow.sdk.execution_time.comms import ConnectionResult

            conn = json.loads(os.environ[f"AIRFLOW_CONN_{msg.conn_id.upper()}"])
            extra = json.dumps(conn.pop("extra", {}))
            return ConnectionResult(conn_id=msg.conn_id, **conn, extra=extra)
        return None

    async def asend(self, msg: Any) -> Any:
        return self.send(msg)

    def kinds(self) -> list[str]:
        return [type(msg).__name__ for msg in self.requests]


@pytest.fixture
def supervisor(monkeypatch) -> TriggerCommsDecoder:
    channel = TriggerCommsDecoder()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", channel, raising=False)
    return channel


@pytest.fixture
def log_socket() -> Iterator[socket.socket]:
    """The reading end of a log socket set up as the triggerer sets up its own: every line this process logs, through
    ``logging`` or structlog, is written to it."""
    writer, reader = socket.socketpair()
    reader.setblocking(False)
    stream = writer.makefile("w", buffering=1, encoding="utf-8")
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    level, config = root.level, structlog.get_config()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    structlog.configure(logger_factory=structlog.WriteLoggerFactory(stream))
    try:
        yield reader
    finally:
        structlog.configure(**config)
        root.removeHandler(handler)
        root.setLevel(level)
        stream.close()
        writer.close()
        reader.close()


def unread(reader: socket.socket) -> bytes:
    """What the log socket holds that nobody has read, left there."""
    try:
        return reader.recv(1 << 20, socket.MSG_PEEK)
    except BlockingIOError:
        return b""


def read(reader: socket.socket) -> bytes:
    """Everything the log socket holds, read (as the triggerer's supervisor reads it)."""
    chunks = []
    while True:
        try:
            chunk = reader.recv(1 << 16)
        except BlockingIOError:
            return b"".join(chunks)
        chunks.append(chunk)


def start_run(emulator) -> str:
    # A "15 s" run that lasts 0.15 s.
    emulator.configure(duration=15.0, time_scale=0.01)
    return AltaHook().invoke_workflow({"topic": "AI"}, is_async=True).workflow_run_id


async def until(condition, what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_the_closing_line_is_read_before_the_task_can_end(alta_emulator, supervisor, log_socket):
    trigger = AltaWorkflowRunTrigger(start_run(alta_emulator), polling=FAST, finish=FINISH.to_dict())
    events = trigger.run()
    first = asyncio.ensure_future(events.__anext__())
    await until(lambda: CLOSING in unread(log_socket) or first.done(), "the closing line")
    # The closing line waits in the socket, unread: nothing that lets the task end has happened yet.
    assert not first.done()
    assert "SetXCom" not in supervisor.kinds() and "DeleteVariable" not in supervisor.kinds()

    # The triggerer reads its log socket from now on.
    logged = bytearray()

    async def triggerer_reads() -> None:
        while True:
            logged.extend(read(log_socket))
            await asyncio.sleep(0.01)

    reading = asyncio.ensure_future(triggerer_reads())
    try:
        event = await asyncio.wait_for(first, 10)
    finally:
        reading.cancel()
    logged.extend(read(log_socket))
    assert isinstance(event, TaskSuccessEvent)
    pushed = [msg.key for msg in supervisor.requests if type(msg).__name__ == "SetXCom"]
    assert "return_value" in pushed and "total_cost" in pushed
    assert supervisor.kinds()[-1] == "DeleteVariable"
    assert logged.count(CLOSING) == 1
    assert logged.index(CLOSING) < logged.index(ENDS_HERE)


async def test_a_triggerer_that_does_not_read_its_log_has_a_worker_end_the_task(
    alta_emulator, supervisor, log_socket, monkeypatch
):
    monkeypatch.setattr(AltaWorkflowRunTrigger, "closing_line_wait", 0.3)
    trigger = AltaWorkflowRunTrigger(start_run(alta_emulator), polling=FAST, finish=FINISH.to_dict())
    (event,) = [event async for event in trigger.run()]
    # The run's event: the task resumes on a worker, which pushes the XComs and logs the closing line.
    assert event.payload["status"] == "success"
    assert "SetXCom" not in supervisor.kinds() and "DeleteVariable" not in supervisor.kinds()
    logged = read(log_socket)
    assert CLOSING in logged
    assert b"has not read this trigger's log for 0.3 s: d/manual__1/t resumes on a worker" in logged
    # Stopped now, it knows its run has ended: no warning that the run keeps running.
    await trigger.on_kill()
    logged = read(log_socket)
    assert b"The trigger was stopped after Alta todayNews 1.0.1 run" in logged and b"ended SUCCEED" in logged
    assert b"keeps running" not in logged


async def test_waits_until_the_log_socket_is_read(log_socket):
    assert log_sockets()
    logging.getLogger(__name__).warning("a line to read")
    assert await wait_until_read(0.05) is False
    waiting = asyncio.ensure_future(wait_until_read(10))
    await asyncio.sleep(0)
    assert b"a line to read" in read(log_socket)
    assert await waiting is True


async def test_no_log_socket_no_wait():
    # Outside a triggerer (here: pytest's own handlers), nothing is watched and nothing waits.
    assert await wait_until_read(10) is None
