"""Fault injection: the queued :class:`~airflow_provider_alta.testing.model.Fault`\\ s and the answers they give.

A test queues a fault (``POST /_emulator/faults``, ``EmulatorClient.inject``); the next matching requests get it
instead of (or, for ``delay_after`` and ``drop_after``, after) their usual answer.
"""

from __future__ import annotations

import asyncio
from collections import deque

from aiohttp import web

from airflow_provider_alta.testing.answers import CODES, error
from airflow_provider_alta.testing.model import Fault


def take_fault(faults: deque[Fault], endpoint: str) -> Fault | None:
    """The fault this request to ``endpoint`` meets, if any (counting it down)."""
    for fault in faults:
        if fault.endpoint in (endpoint, "any") and fault.count > 0:
            if fault.after > 0:  # not yet: this request is answered as usual
                fault.after -= 1
                return None
            fault.count -= 1
            if fault.count == 0:
                faults.remove(fault)
            return fault
    return None


def fault_answer(fault: Fault) -> web.Response:
    """What a fault that replaces the answer sends (every kind but the delays and drops)."""
    headers = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = (
            str(int(fault.retry_after)) if float(fault.retry_after).is_integer() else str(fault.retry_after)
        )
    if fault.kind == "status":
        status = fault.status or 500
        return error(status, fault.body or CODES.get(status, "INTERNAL_ERROR"), "injected fault", headers)
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


def drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without an answer, as a proxy that lost the request would."""
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError()
