"""What the webhook receiver writes to the log, made safe for ids and bodies an attacker chose.

Anyone can reach the receiver, so nothing from a request is logged raw: control characters (CR, LF, VT, FF,
NEL, ESC and its ANSI sequences), line and paragraph separators (U+2028/U+2029), format characters such as
bidi overrides, and backslashes are escaped, and every value is capped in length. Requests refused before
authentication are logged at DEBUG only, with one WARNING a minute counting them, so a flood of bad requests
adds a line a minute to the log instead of a line a request. The server's own access log (Airflow's one line
per request) reads the path from the request's ASGI scope: :class:`CappedPathInAccessLog` leaves it there
escaped and capped too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

#: The longest text taken from a request into one log record.
MAX_LOGGED_CHARS = 200
#: How often the count of unauthenticated rejections is reported.
SUMMARY_INTERVAL_SECONDS = 60.0


def printable(text: str, limit: int = MAX_LOGGED_CHARS) -> str:
    """``text`` with every unprintable character escaped as in a Python literal, cut to about ``limit``."""
    shown = text[:limit]
    escaped = "".join(_escape(ch) for ch in shown)
    if len(text) > limit:
        escaped += f"...(+{len(text) - limit} chars)"
    return escaped


def _escape(ch: str) -> str:
    if ch == "\\":
        return "\\\\"
    if ch.isprintable():
        return ch
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


class RejectionLog:
    """Logs refused unauthenticated requests at DEBUG, and their count at most once per interval."""

    def __init__(
        self,
        log: logging.Logger,
        interval: float = SUMMARY_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._count = 0
        self._since: float | None = None

    def refused(self, status: int, result: str, about: str) -> None:
        self._log.debug("Alta webhook for %s: %s %s", printable(about), status, result)
        now = self._clock()
        with self._lock:
            self._count += 1
            if self._since is not None and now - self._since < self._interval:
                return
            count, since = self._count, self._since
            self._count, self._since = 0, now
        span = f"in the last {now - since:.0f} s" if since is not None else "since the receiver started"
        self._log.warning(
            "Alta webhook receiver refused %d unauthenticated request(s) %s (latest: %s %s; details at DEBUG)",
            count,
            span,
            status,
            result,
        )


class CappedPathInAccessLog:
    """ASGI middleware: when the answer starts, a path holding unprintable characters or longer than
    :data:`MAX_LOGGED_CHARS` is replaced in the ASGI scope by its :func:`printable` form.

    The HTTP server and Airflow's access log middleware share that scope and read the path from it when they
    log the request (uvicorn as the answer starts, Airflow when it ends); nothing routes on it any more by then.
    Without this, a 60 KB id in the URL is 60 KB of access log per request.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return

        async def send_capped(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                path = scope.get("path", "")
                shown = printable(path)
                if shown != path:
                    scope["path"] = shown
                    scope["raw_path"] = shown.encode("ascii", "backslashreplace")
            await send(message)

        await self.app(scope, receive, send_capped)
