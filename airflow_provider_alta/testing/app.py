"""The emulator as an aiohttp application: its state, the API and control routes, the request log line, serving."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from airflow_provider_alta.testing.api import AltaApi
from airflow_provider_alta.testing.control import ControlApi
from airflow_provider_alta.testing.model import MAX_BODY
from airflow_provider_alta.testing.state import LOG_SIZE, EmulatorState
from airflow_provider_alta.testing.webhooks import WebhookSender

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_alta.testing.workflows import WorkflowConfig


class AltaEmulator(EmulatorState):
    """The emulator's state and its aiohttp application.

    ``workflows`` maps each accepted API key to its workflow (by default ``alta-emulator-key`` and ``todayNews``);
    ``seed`` seeds failures and durations; ``concurrency_limit`` caps every key's runs in flight (a workflow's own
    ``concurrency_limit`` wins); ``log_size`` bounds each log the stats show.
    """

    def __init__(
        self,
        workflows: dict[str, WorkflowConfig] | None = None,
        *,
        seed: int = 0,
        concurrency_limit: int | None = None,
        log: Callable[[str], None] | None = None,
        log_size: int = LOG_SIZE,
    ) -> None:
        super().__init__(workflows, seed=seed, concurrency_limit=concurrency_limit, log_size=log_size)
        #: Called with one line per request served (method, path, status, time); ``None`` logs nothing.
        self.log = log
        self._webhooks = WebhookSender(self)
        self._api = AltaApi(self, self._webhooks)
        self._control = ControlApi(self)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY * 4, middlewares=[self._log_request])
        for method, path, handler, _ in self._endpoints():
            app.router.add_route(method, path, handler)
        app.on_cleanup.append(self._close)
        return app

    def _endpoints(self) -> list[tuple[str, str, Any, str]]:
        """Every route with what it is for: the app is built from it, and the index at ``/_emulator/`` shows it."""
        return [
            ("POST", "/v1/workflow/invoke", self._api.handle, "Alta: run the key's workflow (sync or isAsync)"),
            ("POST", "/v1/workflow/query/result", self._api.handle, "Alta: a run's state, body {'workflowRunId': ...}"),
            ("GET", "/_emulator/", self._index, "this list"),
            *self._control.routes(),
        ]

    @web.middleware
    async def _log_request(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """One line per request: method, path (no query string), status and time; never a header or body."""
        if self.log is None:
            response: web.StreamResponse = await handler(request)
            return response
        started = time.perf_counter()
        status: Any = "dropped"
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            self.log(f"{request.method} {request.path} {status} {1000 * (time.perf_counter() - started):.0f} ms")

    async def _index(self, _request: web.Request) -> web.Response:
        endpoints = [{"method": method, "path": path, "what": what} for method, path, _, what in self._endpoints()]
        return web.json_response({"service": "Alta emulator", "endpoints": endpoints})

    async def _close(self, _app: web.Application) -> None:
        await self._webhooks.close()

    async def start(self, host: str = "127.0.0.1", port: int = 0, ssl_context: Any = None) -> Serving:
        """Serve on ``host:port`` (0 = a free port), over TLS when given an ``ssl_context``."""
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        handler = runner.server
        assert handler is not None

        def factory() -> Any:
            self.connections += 1
            return handler()

        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, host, port, backlog=2048, reuse_address=True, ssl=ssl_context)
        return Serving(runner, server, server.sockets[0].getsockname()[1])


@dataclass
class Serving:
    """A started emulator: stop it with :meth:`stop`."""

    runner: web.AppRunner
    server: asyncio.base_events.Server
    port: int

    async def stop(self) -> None:
        self.server.close()
        await self.runner.cleanup()
