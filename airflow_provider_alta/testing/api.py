"""Alta's two endpoints, ``POST /v1/workflow/invoke`` and ``POST /v1/workflow/query/result``, served from the
emulator's state: the key, the rate limit, the body, then the invoke (input checks, the concurrency limit, the run)
or the query. An injected fault answers first, when one is queued for the endpoint.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from aiohttp import web

from airflow_provider_alta._core.json_limits import depth_of
from airflow_provider_alta.testing.answers import error
from airflow_provider_alta.testing.directives import REFUSAL_CODES, Directive, read_directive, without_directive
from airflow_provider_alta.testing.faults import drop, fault_answer, take_fault
from airflow_provider_alta.testing.model import INVOKE, MAX_BODY, MAX_REQUEST_DEPTH, QUERY, Run, check_input, key_id
from airflow_provider_alta.testing.state import EmulatorState
from airflow_provider_alta.testing.webhooks import WebhookSender
from airflow_provider_alta.testing.workflows import WorkflowConfig

#: The endpoint each API path is, as the request log and the faults name it.
PATHS = {"/v1/workflow/invoke": INVOKE, "/v1/workflow/query/result": QUERY}


class Refused(Exception):
    """A request answered with an error before anything happens (no run starts)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class AltaApi:
    """The handler of both API paths."""

    def __init__(self, state: EmulatorState, webhooks: WebhookSender) -> None:
        self._state = state
        self._webhooks = webhooks

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Log the request, meet its fault if one is queued, else answer it."""
        endpoint = PATHS[request.path]
        api_key = _bearer(request)
        # Which key sent it, as the one-way label the stats use (never the key).
        key = key_id(api_key) if api_key is not None else None
        entry: dict[str, Any] = {"endpoint": endpoint, "at": time.time(), "status": None, "key": key}
        self._state.requests[endpoint] += 1
        self._state.request_log.append(entry)
        raw = await request.read()  # read first: a delayed answer's client may be gone later
        fault = take_fault(self._state.faults, endpoint)
        if fault is not None:
            if fault.kind == "delay":
                await asyncio.sleep(fault.delay)
            elif fault.kind == "drop":
                entry["status"] = "dropped"
                return drop(request)
            elif fault.kind not in ("drop_after", "delay_after"):
                response = fault_answer(fault)
                entry["status"] = response.status
                return response
        response = await self._serve(endpoint, api_key or "", raw)
        if fault is not None and fault.kind == "delay_after":
            await asyncio.sleep(fault.delay)  # handled at once, answered late
        if fault is not None and fault.kind == "drop_after":
            entry["status"] = "dropped"
            return drop(request)
        entry["status"] = response.status
        return response

    async def _serve(self, endpoint: str, api_key: str, raw: bytes) -> web.Response:
        workflow = self._state.workflows.get(api_key)
        if workflow is None:
            return error(401, "UNAUTHORIZED", "Missing or invalid API key")
        counters = self._state.counters(api_key)
        limited, headers = self._state.windows.take(api_key, workflow, time.time())
        if limited:
            counters.rate_limited += 1
            return error(429, "RATE_LIMITED", "Rate limit exceeded for this API key", headers)
        if endpoint == QUERY:
            counters.queries += 1
        try:
            body = parse_body(raw)
        except Refused as refused:
            return error(refused.status, refused.code, refused.message, headers)
        if endpoint == QUERY:
            return self._query(api_key, body, headers)
        return await self._invoke(api_key, workflow, body, headers)

    def _query(self, api_key: str, body: dict[str, Any], headers: dict[str, str]) -> web.Response:
        run_id = body.get("workflowRunId")
        if not isinstance(run_id, str) or not run_id:
            return error(400, "INVALID_REQUEST", "'workflowRunId' is required", headers)
        run = self._state.runs.get(run_id)
        if run is None or run.api_key != api_key:
            return error(404, "RUN_NOT_FOUND", f"No workflow run {run_id}", headers)
        run.queries += 1
        run.last_query_at = time.time()
        if run.queries <= run.workflow.queries_not_found:
            return error(404, "RUN_NOT_FOUND", f"No workflow run {run_id}", headers)
        return web.json_response(run.body(time.time()), headers=headers)

    async def _invoke(
        self, api_key: str, workflow: WorkflowConfig, body: dict[str, Any], headers: dict[str, str]
    ) -> web.Response:
        counters = self._state.counters(api_key)
        try:
            run_input, directive, webhooks = check_invoke(workflow, body)
        except Refused as refused:
            counters.invokes += 1
            counters.refused_inputs += 1
            return error(refused.status, refused.code, refused.message, headers)
        now = time.time()
        in_flight = self._state.in_flight
        running = in_flight.count(api_key, now)
        limit = self._state.concurrency_limit_for(workflow)
        if limit is not None and running >= limit:
            counters.concurrency_refused += 1
            message = f"{running} runs in flight for this API key, the most it may have (retry when one ends)"
            retry = {**headers, "Retry-After": in_flight.retry_after(api_key, now)}
            return error(429, "CONCURRENCY_LIMIT_EXCEEDED", message, retry)
        counters.invokes += 1
        run = self._start(api_key, workflow, run_input, directive, webhooks, body.get("isAsync", False) is True)
        counters.started(run_input, in_flight.add(api_key, run.ends_at))
        if not run.is_async:
            await asyncio.sleep(max(0.0, run.ends_at - time.time()))
            return web.json_response(run.body(max(time.time(), run.ends_at)), headers=headers)
        if webhooks:
            self._webhooks.schedule(run)
        return web.json_response(run.acknowledgement(), headers=headers)

    def _start(
        self,
        api_key: str,
        workflow: WorkflowConfig,
        run_input: dict[str, Any],
        directive: Directive,
        webhooks: list[dict[str, Any]],
        is_async: bool,
    ) -> Run:
        rng = self._state.rng
        # Both draws are made whatever the directive says, so an item's directive shifts no other run's draws.
        drawn = workflow.duration_for(without_directive(run_input), rng)
        failed = workflow.failed(rng)
        run = Run(
            run_id=str(uuid.uuid4()),
            api_key=api_key,
            workflow=workflow,
            input=run_input,
            is_async=is_async,
            created_at=time.time(),
            failed=failed or directive.fail is not False,
            duration=directive.duration if directive.duration is not None else drawn,
            webhooks=webhooks,
            failure_message=directive.fail if isinstance(directive.fail, str) and directive.fail else None,
        )
        self._state.runs[run.run_id] = run
        return run


def _bearer(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() if auth.startswith("Bearer ") else None


def parse_body(raw: bytes) -> dict[str, Any]:
    """The request's JSON object; :class:`Refused` when it is too large, too deep, not JSON or not an object."""
    if len(raw) > MAX_BODY:
        raise Refused(413, "PAYLOAD_TOO_LARGE", f"Request body exceeds {MAX_BODY} bytes")
    try:
        body = json.loads(raw)
        too_deep = depth_of(body, MAX_REQUEST_DEPTH) > MAX_REQUEST_DEPTH
    except RecursionError:
        too_deep = True
    except ValueError:
        raise Refused(400, "INVALID_REQUEST", "Request body is not valid JSON") from None
    if too_deep:
        raise Refused(400, "INVALID_REQUEST", f"Request body is nested deeper than {MAX_REQUEST_DEPTH} levels")
    if not isinstance(body, dict):
        raise Refused(400, "INVALID_REQUEST", "Request body must be a JSON object")
    return body


def check_invoke(workflow: WorkflowConfig, body: dict[str, Any]) -> tuple[dict[str, Any], Directive, list[Any]]:
    """The input, its directive and the webhooks of an invoke; :class:`Refused` for a request no run may start for."""
    run_input = body.get("input")
    if not isinstance(run_input, dict):
        raise Refused(400, "INVALID_REQUEST", "'input' must be an object")
    try:
        directive = read_directive(run_input)
    except ValueError as exc:
        raise Refused(400, "INVALID_REQUEST", str(exc)) from None
    problem = check_input(workflow, without_directive(run_input))
    if problem:
        raise Refused(400, "INVALID_INPUT", problem)
    if directive.refuse is not None:
        raise Refused(directive.refuse, REFUSAL_CODES[directive.refuse], "The workflow refused this input")
    webhooks = body.get("webhook") or []
    if not isinstance(webhooks, list) or len(webhooks) > 5:
        raise Refused(400, "INVALID_REQUEST", "'webhook' must be a list of at most 5 entries")
    return run_input, directive, webhooks
