"""``LazyASGIApp``: the real app is built by the first call, once, and a failed build is tried again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_provider_alta.plugins.lazy_app import LazyASGIApp


class Factory:
    """Builds an app that records the scopes it is called with; fails the first ``failures`` builds."""

    def __init__(self, failures: int = 0) -> None:
        self.builds = 0
        self.failures = failures
        self.scopes: list[dict[str, Any]] = []

    def __call__(self) -> Any:
        self.builds += 1
        if self.builds <= self.failures:
            raise RuntimeError("metadata database not reachable yet")

        async def app(scope: Any, receive: Any, send: Any) -> None:
            self.scopes.append(scope)

        return app


async def _nothing() -> dict[str, Any]:
    return {}


async def _ignore(message: Any) -> None:
    return None


def call(app: LazyASGIApp, path: str) -> None:
    asyncio.run(app({"type": "http", "path": path}, _nothing, _ignore))


def test_built_by_the_first_call_and_only_once():
    factory = Factory()
    app = LazyASGIApp(factory, "probe")
    assert (factory.builds, app.built) == (0, False)
    assert "not built yet" in repr(app)
    call(app, "/one")
    call(app, "/two")
    assert (factory.builds, app.built) == (1, True)
    assert [scope["path"] for scope in factory.scopes] == ["/one", "/two"]


def test_a_failed_build_is_tried_again_on_the_next_call():
    factory = Factory(failures=1)
    app = LazyASGIApp(factory, "probe")
    with pytest.raises(RuntimeError, match="not reachable yet"):
        call(app, "/one")
    assert app.built is False
    call(app, "/two")
    assert (factory.builds, [scope["path"] for scope in factory.scopes]) == (2, ["/two"])


def test_serves_a_fastapi_app_mounted_like_the_api_server_mounts_it():
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    def build() -> FastAPI:
        sub = FastAPI()

        @sub.get("/hello")
        def hello() -> dict[str, str]:
            return {"hello": "world"}

        return sub

    host = FastAPI()
    host.mount("/lazy", LazyASGIApp(build, "hello"))
    answer = TestClient(host).get("/lazy/hello")
    assert (answer.status_code, answer.json()) == (200, {"hello": "world"})
