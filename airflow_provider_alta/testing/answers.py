"""The documented error answer, ``{"error": {"code", "message", "status"}}``, as every part of the emulator sends it."""

from __future__ import annotations

from aiohttp import web

#: The code of each status when nothing more specific applies (an injected fault names only its status).
CODES = {
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


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """An error answer in the shape Alta documents."""
    return web.json_response(
        {"error": {"code": code, "message": message, "status": status}}, status=status, headers=headers or {}
    )
