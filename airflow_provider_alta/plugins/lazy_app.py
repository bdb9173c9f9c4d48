"""An ASGI app built on its first call, so that listing a plugin's FastAPI apps costs nothing.

Airflow reads a plugin's ``fastapi_apps`` wherever plugins are loaded (``airflow plugins`` lists them), and mounts
them only in the API server. Each entry is therefore one of these: the real app, and FastAPI with it, is imported
and built by the first request (or lifespan event) it receives, which only the API server sends.
Standard library only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)


class LazyASGIApp:
    """Stands in for the app ``factory`` builds, and builds it when first called.

    A factory that raises is tried again on the next call, so a transient error at start (the metadata
    database not reachable yet) does not leave the mount broken until the server restarts.
    """

    def __init__(self, factory: Callable[[], ASGIApp], name: str) -> None:
        self.factory = factory
        self.name = name
        self._app: ASGIApp | None = None

    @property
    def built(self) -> bool:
        return self._app is not None

    def app(self) -> ASGIApp:
        """The real app, built now if no call has built it yet."""
        if self._app is None:
            log.debug("Building the %s app on its first call", self.name)
            self._app = self.factory()
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app()(scope, receive, send)

    def __repr__(self) -> str:
        return f"<LazyASGIApp {self.name} ({'built' if self.built else 'not built yet'})>"
