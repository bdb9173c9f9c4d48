"""The emulator in a background thread of this process, for tests, demos and benchmarks."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from airflow_provider_alta.testing.app import AltaEmulator

if TYPE_CHECKING:
    from airflow_provider_alta.testing.workflows import WorkflowConfig


class EmulatorThread:
    """The emulator running in a background thread of this process (for tests and demos).

    ``seed`` and ``concurrency_limit`` are :class:`~.app.AltaEmulator`'s.
    """

    def __init__(
        self,
        workflows: dict[str, WorkflowConfig] | None = None,
        *,
        port: int = 0,
        ssl_context: Any = None,
        seed: int = 0,
        concurrency_limit: int | None = None,
    ) -> None:
        self.emulator = AltaEmulator(workflows, seed=seed, concurrency_limit=concurrency_limit)
        self._port = port
        self._ssl_context = ssl_context
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"{'https' if self._ssl_context else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> EmulatorThread:
        self._thread = threading.Thread(target=self._run, name="alta-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"the Alta emulator did not start: {self._error!r}")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            serving = loop.run_until_complete(self.emulator.start(port=self._port, ssl_context=self._ssl_context))
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self.port = serving.port
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(serving.stop())
            loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
