"""A stand-in for the triggerer's channel to its supervisor, for the plumbing that talks over it."""

from __future__ import annotations

from typing import Any

import pytest


class TriggerCommsDecoder:
    """Named as Airflow's triggerer channel is (by which ``internals.in_triggerer()`` knows a triggerer): it keeps
    each request and answers it as a supervisor does, an XCom read with "none", anything else with ``answer``."""

    def __init__(self, answer: Any = None) -> None:
        self.requests: list[Any] = []
        self.answer = answer

    def send(self, msg: Any) -> Any:
        self.requests.append(msg)
        if type(msg).__name__ == "GetXCom":
            from airflow.sdk.execution_time.comms import XComResult

            return XComResult(key=msg.key, value=None)
        return self.answer

    async def asend(self, msg: Any) -> Any:
        return self.send(msg)

    def kinds(self) -> list[str]:
        return [type(msg).__name__ for msg in self.requests]


def use_channel(monkeypatch: pytest.MonkeyPatch, channel: Any) -> None:
    """Make ``channel`` this process's channel to its supervisor (``None``: no channel, as outside a task)."""
    from airflow.sdk.execution_time import task_runner

    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", channel, raising=False)
