"""The asyncio wire: ``aiohttp`` for triggers and batches, and the awaiting twins of :mod:`.sync`'s drivers.

All hooks of one process that talk to the same Alta with the same TLS and proxy settings share one session
(:data:`session_pool`), so a triggerer with hundreds of triggers keeps one connection pool, not hundreds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_alta._core.connection import AltaConnectionConfig
from airflow_provider_alta._core.protocol import ApiRequest, join_url
from airflow_provider_alta._core.ratelimit import RateBudget
from airflow_provider_alta._core.request_retry import RetrySettings, budget_wait, tenacity_kwargs
from airflow_provider_alta._core.waiting import RunWaiter
from airflow_provider_alta._transport.errors import aiohttp_transport_error, give_up, undecodable
from airflow_provider_alta._transport.reply import Reply, body_encoding
from airflow_provider_alta.exceptions import AltaError
from airflow_provider_alta.models import WorkflowRun

if TYPE_CHECKING:
    import aiohttp


class SessionPool:
    """One aiohttp session per (event loop, base URL, TLS and proxy settings), reference counted.

    The session closes when its last user is done.
    """

    def __init__(self) -> None:
        self._sessions: dict[tuple[Any, ...], list[Any]] = {}

    @staticmethod
    def _key(config: AltaConnectionConfig) -> tuple[Any, ...]:
        return (id(asyncio.get_running_loop()), config.base_url, config.verify, config.proxy_url)

    def acquire(self, config: AltaConnectionConfig) -> aiohttp.ClientSession:
        import aiohttp

        key = self._key(config)
        entry = self._sessions.get(key)
        if entry is None or entry[0].closed:
            connector = aiohttp.TCPConnector(limit=100, ssl=_ssl(config.verify))
            entry = self._sessions[key] = [aiohttp.ClientSession(connector=connector, trust_env=False), 0]
        entry[1] += 1
        session: aiohttp.ClientSession = entry[0]
        return session

    async def release(self, config: AltaConnectionConfig) -> None:
        key = self._key(config)
        entry = self._sessions.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            del self._sessions[key]
            await entry[0].close()

    def open_sessions(self) -> int:
        return len(self._sessions)


#: The process' sessions.
session_pool = SessionPool()


def _ssl(verify: bool | str) -> Any:
    """aiohttp's ``ssl`` argument for the connection's ``verify`` extra (a CA bundle's path, or on/off)."""
    if isinstance(verify, str):
        import ssl

        return ssl.create_default_context(cafile=verify)
    return verify is not False


async def exchange(
    session: aiohttp.ClientSession, request: ApiRequest, config: AltaConnectionConfig, read_timeout: float
) -> Reply:
    """POST ``request`` and read the answer, strictly decoded; a failure on the way is a typed error."""
    import aiohttp

    url = join_url(config.base_url, request.path)
    timeout = aiohttp.ClientTimeout(sock_connect=config.connect_timeout, sock_read=read_timeout, total=None)
    try:
        async with session.post(
            url, data=request.payload, headers=config.headers, timeout=timeout, proxy=config.proxy_url
        ) as response:
            status, headers = response.status, response.headers
            try:
                text = await read_text(response)
            except UnicodeDecodeError as err:
                raise undecodable(request, status, err) from None
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise aiohttp_transport_error(request, url, exc) from exc
    return Reply(status, headers, text)


async def read_text(response: aiohttp.ClientResponse) -> str:
    """The body decoded as ``response.text()`` decodes it, read into one buffer released before parsing.

    ``text()`` keeps every chunk of the body until the last one arrives, joins them, and the response
    keeps the joined bytes while the text is parsed. Here each chunk is freed as soon as it is copied,
    and the buffer as soon as it is decoded. The encoding is the one aiohttp picks for the pool's
    sessions: the declared charset when Python knows it, else UTF-8 (aiohttp's default fallback).
    """
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
    text = body.decode(body_encoding(response.charset))
    del body
    return text


async def call(
    send: Callable[[], Awaitable[WorkflowRun]],
    request: ApiRequest,
    retry: RetrySettings,
    budget: RateBudget | None,
    on_retry: Callable[[Any], None],
) -> WorkflowRun:
    """:func:`.sync.call` without blocking the event loop."""
    import tenacity

    async def attempt() -> WorkflowRun:
        while budget is not None and (wait := budget_wait(budget, retry)) > 0:
            await asyncio.sleep(wait)
        return await send()

    try:
        return await tenacity.AsyncRetrying(**tenacity_kwargs(request, retry, on_retry))(attempt)
    except AltaError as exc:
        give_up(request, exc)


async def drive(
    waiter: RunWaiter, initial: WorkflowRun | None, send: Callable[[], Awaitable[WorkflowRun]]
) -> WorkflowRun:
    """:func:`.sync.drive` without blocking the event loop."""
    step = waiter.begin(initial, time.time())
    while step.run is None:
        if step.send:
            try:
                outcome: WorkflowRun | AltaError = await send()
            except AltaError as exc:
                outcome = exc
            step = waiter.received(outcome, time.time())
        else:
            await asyncio.sleep(step.pause)
            step = waiter.awake(time.time())
    run: WorkflowRun = step.run
    return run
