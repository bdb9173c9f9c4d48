"""A local emulator of the Alta workflow API: a real HTTP server on 127.0.0.1.

It serves the two documented endpoints (``POST /v1/workflow/invoke`` and
``POST /v1/workflow/query/result``) with the documented bodies, headers and
error shape, so the provider and users' DAGs can be tested offline.

Where the API documentation is silent, the emulator chose:

* a FAILED run carries ``status: "FAILED"``, ``output: null`` and an
  ``errorMessage`` string;
* an unknown run id (or another key's run) answers 404 ``RUN_NOT_FOUND``;
  a missing or unknown key 401 ``UNAUTHORIZED``; an input that breaks the
  workflow's Start-node schema 400 ``INVALID_INPUT``; a malformed body 400
  ``INVALID_REQUEST`` (so does one nested deeper than 128 levels); a body
  over 1 MiB 413 ``PAYLOAD_TOO_LARGE``;
* an exhausted rate limit answers 429 ``RATE_LIMITED`` with ``Retry-After``
  (seconds) and the ``X-RateLimit-*`` headers; limits are fixed windows per key
  (``rate_window_age`` and ``rate_used_before`` start a key's first window part spent);
* webhooks: ``POST`` sends the query-result JSON; ``GET`` sends
  ``workflowRunId`` and ``status`` as query parameters; the caller's headers
  are sent as given, once per webhook when the run ends (a workflow's
  ``webhook_copies`` and ``webhook_delay`` lose, repeat or delay them);
* runs stay queryable for the emulator's lifetime (a workflow's ``queries_not_found`` answers a run's first
  queries 404 ``RUN_NOT_FOUND`` all the same); a run is PENDING for its
  first tenth (at most 0.2 s), then RUNNING until its duration has passed
  (a workflow's ``duration_field`` lets each run's input set its duration, and its ``time_scale`` runs it
  faster or slower than the wall clock: its answers still give the workflow's own duration).

Control endpoints under ``/_emulator/`` (not counted, no key needed) let tests
configure workflows, inject faults and read counters; see
:class:`airflow_provider_alta.testing.client.EmulatorClient`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

from aiohttp import ClientSession, ClientTimeout, web

from airflow_provider_alta._core.json_limits import depth_of
from airflow_provider_alta.testing.model import (
    FAULT_KINDS,
    INVOKE,
    MAX_BODY,
    MAX_REQUEST_DEPTH,
    QUERY,
    Fault,
    Run,
    check_input,
    key_id,
)
from airflow_provider_alta.testing.workflows import DEFAULT_API_KEY, WorkflowConfig

__all__ = [
    "FAULT_KINDS",
    "INVOKE",
    "MAX_BODY",
    "MAX_REQUEST_DEPTH",
    "QUERY",
    "AltaEmulator",
    "EmulatorThread",
    "Fault",
    "Run",
    "Serving",
    "key_id",
    "load_workflows",
    "main",
]

_PATHS = {"/v1/workflow/invoke": INVOKE, "/v1/workflow/query/result": QUERY}


class AltaEmulator:
    """The emulator's state and its aiohttp application."""

    def __init__(
        self,
        workflows: dict[str, WorkflowConfig] | None = None,
        *,
        seed: int = 0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        #: Called with one line per request served (method, path, status, time); ``None`` logs nothing.
        self.log = log
        self.initial_workflows = dict(workflows) if workflows is not None else {DEFAULT_API_KEY: WorkflowConfig()}
        self.rng = random.Random(seed)
        self.connections = 0
        self._client: ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.reset()

    def reset(self) -> None:
        self.workflows: dict[str, WorkflowConfig] = {
            k: WorkflowConfig(**vars(v)) for k, v in self.initial_workflows.items()
        }
        self.runs: dict[str, Run] = {}
        self.faults: deque[Fault] = deque()
        self.request_log: list[dict[str, Any]] = []
        self.invokes_by_key: dict[str, int] = {}
        self.deliveries: list[dict[str, Any]] = []
        self.sunk: list[dict[str, Any]] = []
        self.windows: dict[str, tuple[float, int]] = {}
        self.connections_at_reset = self.connections

    # -- application -------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY * 4, middlewares=[self._log_request])
        for method, path, handler, _ in self._endpoints():
            app.router.add_route(method, path, handler)
        app.on_cleanup.append(self._close)
        return app

    def _endpoints(self) -> list[tuple[str, str, Any, str]]:
        """Every route with what it is for: the app is built from it, and the index at ``/_emulator/`` shows it."""
        return [
            ("POST", "/v1/workflow/invoke", self._api, "Alta: run the key's workflow (sync or isAsync)"),
            ("POST", "/v1/workflow/query/result", self._api, "Alta: a run's state, body {'workflowRunId': ...}"),
            ("GET", "/_emulator/", self._index, "this list"),
            ("GET", "/_emulator/stats", self._stats, "request counters, request log, webhook deliveries"),
            ("POST", "/_emulator/reset", self._reset, "forget runs, counters, faults and workflow changes"),
            ("POST", "/_emulator/faults", self._add_fault, "misbehave on the next requests (see Fault)"),
            ("PUT", "/_emulator/workflows", self._put_workflow, "serve a workflow for a key (see WorkflowConfig)"),
            ("GET", "/_emulator/runs/{run_id}", self._get_run, "the emulator's record of one run"),
            ("*", "/_emulator/sink", self._sink, "a webhook receiver that records what arrived"),
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
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.close()

    # -- API ---------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.StreamResponse:
        endpoint = _PATHS[request.path]
        auth = request.headers.get("Authorization", "")
        # Which key sent it, as the one-way label the stats use (never the key).
        key = key_id(auth[7:].strip()) if auth.startswith("Bearer ") else None
        entry: dict[str, Any] = {"endpoint": endpoint, "at": time.time(), "status": None, "key": key}
        self.request_log.append(entry)
        raw = await request.read()  # read first: a delayed answer's client may be gone later
        fault = self._take_fault(endpoint)
        if fault is not None:
            if fault.kind == "delay":
                await asyncio.sleep(fault.delay)
            elif fault.kind == "drop":
                entry["status"] = "dropped"
                return self._drop(request)
            elif fault.kind not in ("drop_after", "delay_after"):
                response = self._fault_response(fault)
                entry["status"] = response.status
                return response
        response = await self._handle(request, endpoint, raw)
        if fault is not None and fault.kind == "delay_after":
            await asyncio.sleep(fault.delay)  # handled at once, answered late
        if fault is not None and fault.kind == "drop_after":
            entry["status"] = "dropped"
            return self._drop(request)
        entry["status"] = response.status
        return response

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError()

    def _take_fault(self, endpoint: str) -> Fault | None:
        for fault in self.faults:
            if fault.endpoint in (endpoint, "any") and fault.count > 0:
                if fault.after > 0:  # not yet: this request is answered as usual
                    fault.after -= 1
                    return None
                fault.count -= 1
                if fault.count == 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _fault_response(self, fault: Fault) -> web.Response:
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = (
                str(int(fault.retry_after)) if float(fault.retry_after).is_integer() else str(fault.retry_after)
            )
        if fault.kind == "status":
            status = fault.status or 500
            return _error(status, fault.body or _CODES.get(status, "INTERNAL_ERROR"), "injected fault", headers)
        if fault.kind == "html":
            status = fault.status or 502
            page = (
                f"<html><head><title>{status} Bad Gateway</title></head>"
                f"<body><h1>{status} Bad Gateway</h1><p>nginx</p></body></html>"
            )
            return web.Response(status=status, text=page, content_type="text/html", headers=headers)
        if fault.kind == "malformed":
            return web.Response(
                status=fault.status or 200, text='{"workflowRunId": "abc", "status": ', content_type="application/json"
            )
        if fault.text is not None:
            return web.Response(status=fault.status or 200, text=fault.text, content_type="application/json")
        return web.json_response(fault.body, status=fault.status or 200)

    async def _handle(self, request: web.Request, endpoint: str, raw: bytes) -> web.Response:
        auth = request.headers.get("Authorization", "")
        api_key = auth[7:].strip() if auth.startswith("Bearer ") else ""
        workflow = self.workflows.get(api_key)
        if workflow is None:
            return _error(401, "UNAUTHORIZED", "Missing or invalid API key")
        limited = self._rate_limit(api_key, workflow)
        headers = limited[1]
        if limited[0] is not None:
            return limited[0]
        if len(raw) > MAX_BODY:
            return _error(413, "PAYLOAD_TOO_LARGE", f"Request body exceeds {MAX_BODY} bytes", headers)
        try:
            body = json.loads(raw)
            too_deep = depth_of(body, MAX_REQUEST_DEPTH) > MAX_REQUEST_DEPTH
        except RecursionError:
            too_deep = True
        except ValueError:
            return _error(400, "INVALID_REQUEST", "Request body is not valid JSON", headers)
        if too_deep:
            return _error(
                400, "INVALID_REQUEST", f"Request body is nested deeper than {MAX_REQUEST_DEPTH} levels", headers
            )
        if not isinstance(body, dict):
            return _error(400, "INVALID_REQUEST", "Request body must be a JSON object", headers)
        if endpoint == QUERY:
            return self._query(api_key, body, headers)
        self.invokes_by_key[key_id(api_key)] = self.invokes_by_key.get(key_id(api_key), 0) + 1
        return await self._invoke(api_key, workflow, body, headers)

    def _rate_limit(self, api_key: str, workflow: WorkflowConfig) -> tuple[web.Response | None, dict[str, str]]:
        if workflow.rate_limit is None:
            return None, {}
        now = time.time()
        # The key's first window may be under way already, with requests other clients spent in it.
        start, used = self.windows.get(api_key, (now - workflow.rate_window_age, workflow.rate_used_before))
        if now >= start + workflow.rate_window:
            start, used = now, 0
        reset = start + workflow.rate_window
        headers = {
            "X-RateLimit-Limit": str(workflow.rate_limit),
            "X-RateLimit-Reset": str(int(reset) + (0 if float(reset).is_integer() else 1)),
        }
        if used >= workflow.rate_limit:
            headers["X-RateLimit-Remaining"] = "0"
            headers["Retry-After"] = str(max(1, int(reset - now + 0.999)))
            self.windows[api_key] = (start, used)
            return _error(429, "RATE_LIMITED", "Rate limit exceeded for this API key", headers), headers
        self.windows[api_key] = (start, used + 1)
        headers["X-RateLimit-Remaining"] = str(workflow.rate_limit - used - 1)
        return None, headers

    def _query(self, api_key: str, body: dict[str, Any], headers: dict[str, str]) -> web.Response:
        run_id = body.get("workflowRunId")
        if not isinstance(run_id, str) or not run_id:
            return _error(400, "INVALID_REQUEST", "'workflowRunId' is required", headers)
        run = self.runs.get(run_id)
        if run is None or run.api_key != api_key:
            return _error(404, "RUN_NOT_FOUND", f"No workflow run {run_id}", headers)
        run.queries += 1
        run.last_query_at = time.time()
        if run.queries <= run.workflow.queries_not_found:
            return _error(404, "RUN_NOT_FOUND", f"No workflow run {run_id}", headers)
        return web.json_response(run.body(time.time()), headers=headers)

    async def _invoke(
        self, api_key: str, workflow: WorkflowConfig, body: dict[str, Any], headers: dict[str, str]
    ) -> web.Response:
        run_input = body.get("input")
        if not isinstance(run_input, dict):
            return _error(400, "INVALID_REQUEST", "'input' must be an object", headers)
        problem = check_input(workflow, run_input)
        if problem:
            return _error(400, "INVALID_INPUT", problem, headers)
        is_async = body.get("isAsync", False) is True
        webhooks = body.get("webhook") or []
        if not isinstance(webhooks, list) or len(webhooks) > 5:
            return _error(400, "INVALID_REQUEST", "'webhook' must be a list of at most 5 entries", headers)
        run = Run(
            run_id=str(uuid.uuid4()),
            api_key=api_key,
            workflow=WorkflowConfig(**{**vars(workflow), "duration": workflow.duration_for(run_input)}),
            input=run_input,
            is_async=is_async,
            created_at=time.time(),
            failed=workflow.failed(self.rng),
            webhooks=webhooks,
        )
        self.runs[run.run_id] = run
        if not is_async:
            await asyncio.sleep(max(0.0, run.ends_at - time.time()))
            return web.json_response(run.body(max(time.time(), run.ends_at)), headers=headers)
        if webhooks:
            task = asyncio.get_running_loop().create_task(self._deliver_later(run))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.json_response(run.acknowledgement(), headers=headers)

    async def _deliver_later(self, run: Run) -> None:
        delay = run.workflow.wall_seconds(run.workflow.webhook_delay)
        await asyncio.sleep(max(0.0, run.ends_at + delay - time.time()))
        if self._client is None:
            self._client = ClientSession(timeout=ClientTimeout(total=10))
        final = run.body(max(time.time(), run.ends_at))
        for hook in [hook for hook in run.webhooks for _ in range(run.workflow.webhook_copies)]:
            record: dict[str, Any] = {
                "workflowRunId": run.run_id,
                "method": hook.get("method"),
                "url": hook.get("url"),
                "header_names": sorted((hook.get("headers") or {}).keys()),
                "at": time.time(),
            }
            try:
                method = str(hook.get("method", "POST")).upper()
                kwargs: dict[str, Any] = {"headers": hook.get("headers") or {}}
                if method == "GET":
                    kwargs["params"] = {"workflowRunId": run.run_id, "status": final["status"]}
                else:
                    kwargs["json"] = final
                async with self._client.request(method, hook["url"], **kwargs) as response:
                    record["status"] = response.status
            except Exception as exc:  # a receiver's failure is recorded, not raised
                record["error"] = type(exc).__name__
            self.deliveries.append(record)

    # -- control -----------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        counts = {INVOKE: 0, QUERY: 0}
        for entry in self.request_log:
            counts[entry["endpoint"]] += 1
        return {
            "requests": counts,
            "request_log": self.request_log,
            "invokes_by_key": self.invokes_by_key,
            "runs": len(self.runs),
            "connections": self.connections - self.connections_at_reset,
            "webhook_deliveries": self.deliveries,
            "sink": self.sunk,
            "pending_faults": len(self.faults),
        }

    async def _sink(self, request: web.Request) -> web.Response:
        """A webhook receiver for tests: records what arrived (header names only)."""
        self.sunk.append(
            {
                "method": request.method,
                "query": dict(request.query),
                "header_names": sorted(request.headers),
                "body": await request.text(),
                "at": time.time(),
            }
        )
        return web.Response(status=204)

    async def _stats(self, _request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _reset(self, _request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})

    async def _add_fault(self, request: web.Request) -> web.Response:
        try:
            self.faults.append(Fault.from_dict(await request.json()))
        except (TypeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def _put_workflow(self, request: web.Request) -> web.Response:
        data = await request.json()
        try:
            self.workflows[data["api_key"]] = WorkflowConfig.from_dict(data.get("workflow") or {})
        except (KeyError, TypeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def _get_run(self, request: web.Request) -> web.Response:
        run = self.runs.get(request.match_info["run_id"])
        if run is None:
            return web.json_response({"error": "unknown run"}, status=404)
        now = time.time()
        return web.json_response(
            {
                "body": run.body(max(now, run.ends_at)),
                "ends_at": run.ends_at,
                "queries": run.queries,
                "last_query_at": run.last_query_at,
                # Where the run reports when it ends (URLs only: headers may hold secrets).
                "webhook_urls": [hook.get("url") for hook in run.webhooks],
                "status_now": run.status(now),
            }
        )

    # -- serving -----------------------------------------------------------
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


_CODES = {
    400: "INVALID_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "RUN_NOT_FOUND",
    413: "PAYLOAD_TOO_LARGE",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, "status": status}}, status=status, headers=headers or {}
    )


class EmulatorThread:
    """The emulator running in a background thread of this process (for tests and demos)."""

    def __init__(
        self, workflows: dict[str, WorkflowConfig] | None = None, *, port: int = 0, ssl_context: Any = None
    ) -> None:
        self.emulator = AltaEmulator(workflows)
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


def load_workflows(path: str | None) -> dict[str, WorkflowConfig] | None:
    """Read ``{"workflows": {"<api key>": {...settings...}}}`` from a JSON file."""
    if not path:
        return None
    data = json.loads(Path(path).read_text())
    return {key: WorkflowConfig.from_dict(value) for key, value in data["workflows"].items()}


def banner(url: str, workflows: dict[str, WorkflowConfig], config: str | None = None) -> str:
    """What the emulator prints on start: its URL, the key it accepts and a connection line to paste.

    Keys read from a ``--config`` file are the user's own: they are counted, never echoed (a log of the
    emulator must not hold them); the line to paste then shows where the key goes.
    """
    lines = [f"Alta emulator listening on {url} (endpoints: {url}/_emulator/)"]
    if config is None:
        first = next(iter(workflows), DEFAULT_API_KEY)
        for api_key, workflow in workflows.items():
            lines.append(f"Accepted API key: {api_key} (workflow {workflow.name} {workflow.version})")
    else:
        first = "<an API key of " + Path(config).name + ">"
        names = sorted({f"{w.name} {w.version}" for w in workflows.values()})
        lines.append(f"Accepted API keys: the {len(workflows)} of {config} (workflows {', '.join(names)})")
    conn = json.dumps({"conn_type": "alta", "host": url, "password": first})
    lines += ["Point Airflow's alta_default connection at it:", f"  export AIRFLOW_CONN_ALTA_DEFAULT='{conn}'"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """``alta-emulator``: serve the emulator until interrupted."""
    parser = argparse.ArgumentParser(
        prog="alta-emulator",
        description=__doc__.split("\n\n")[0],
        epilog=f"Without --config it accepts the API key {DEFAULT_API_KEY!r} (a todayNews workflow) and "
        "prints a ready-to-paste AIRFLOW_CONN_ALTA_DEFAULT line. Each request is logged as one line "
        "(method, path, status; never a key or a body).",
    )
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--config", help='JSON file: {"workflows": {"<api key>": {settings}}}')
    parser.add_argument("--port-file", help="write the bound port to this file once listening")
    parser.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (with --tls-key)")
    parser.add_argument("--tls-key", help="the PEM private key of --tls-cert")
    parser.add_argument("--quiet", action="store_true", help="do not log the requests served")
    args = parser.parse_args(argv)
    ssl_context = None
    if args.tls_cert:
        import ssl

        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(args.tls_cert, args.tls_key)
    scheme = "https" if ssl_context else "http"

    def log(line: str) -> None:
        print(line, flush=True)

    async def serve() -> None:
        emulator = AltaEmulator(load_workflows(args.config), log=None if args.quiet else log)
        serving = await emulator.start(port=args.port, ssl_context=ssl_context)
        if args.port_file:
            Path(args.port_file).write_text(str(serving.port))
        print(banner(f"{scheme}://127.0.0.1:{serving.port}", emulator.workflows, args.config), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await serving.stop()

    asyncio.run(serve())
    sys.exit(0)


if __name__ == "__main__":
    main()
