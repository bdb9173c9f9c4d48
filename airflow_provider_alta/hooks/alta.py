"""Hooks for the Alta workflow API.

:class:`AltaHook` (requests) serves workers; :class:`AltaAsyncHook` (aiohttp)
serves triggers. Both are thin shells: requests are built, answers parsed,
errors typed and retries decided in :mod:`airflow_provider_alta._core.protocol`,
:mod:`~airflow_provider_alta._core.request_retry` and :mod:`~airflow_provider_alta._core.polling`.
``requests`` and ``aiohttp`` are imported only when a request is made, so a DAG
file importing an operator stays cheap to parse.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_alta._airflow.version_compat import AirflowNotFoundException
from airflow_provider_alta._airflow.version_compat.hook import BaseHook, aget_connection, legacy_connection_form
from airflow_provider_alta._core.connection import CONN_TYPE, AltaConnectionConfig
from airflow_provider_alta._core.polling import PollingSettings
from airflow_provider_alta._core.protocol import (
    QUERY_PATH,
    ApiRequest,
    invoke_request,
    join_url,
    parse_rate_limit,
    parse_response,
    query_request,
    redact,
)
from airflow_provider_alta._core.ratelimit import RateBudget, budget_for
from airflow_provider_alta._core.request_retry import outcome_unknown, tenacity_kwargs
from airflow_provider_alta._core.validation import build_invoke_body, ensure_positive_number, ensure_run_id
from airflow_provider_alta._core.waiting import Notice, NoticeCallback, OutageReport, PollSchedule, RunWaiter
from airflow_provider_alta.exceptions import (
    AltaError,
    AltaInvalidResponseError,
    AltaNotFoundError,
    AltaRateLimitError,
    AltaTransportError,
    AltaValidationError,
)
from airflow_provider_alta.models import WorkflowRun

if TYPE_CHECKING:
    import aiohttp
    import requests
    import tenacity

#: The run id ``test_connection`` asks for: no real run has it, so a 404 proves the key works.
CONNECTION_TEST_RUN_ID = "airflow-provider-alta-connection-test"

StatusCallback = Callable[[WorkflowRun, float], None]


class _AltaHookBase(BaseHook):
    """What both hooks share: the connection, the key's budget, logging of retries."""

    conn_name_attr = "alta_conn_id"
    default_conn_name = "alta_default"
    conn_type = CONN_TYPE
    hook_name = "Alta"

    def __init__(self, alta_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alta_conn_id = alta_conn_id
        self._config: AltaConnectionConfig | None = None
        self._budget: RateBudget | None = None
        #: Queries (``/v1/workflow/query/result``) this hook has sent, retries included: the run's metrics count them.
        self.queries_sent = 0

    def _count(self, request: ApiRequest) -> None:
        if request.path == QUERY_PATH:
            self.queries_sent += 1

    def _config_from(self, conn: Any) -> AltaConnectionConfig:
        self._config = AltaConnectionConfig.from_parts(
            conn_id=self.alta_conn_id,
            host=conn.host,
            password=conn.password,
            extra=conn.extra,
            port=conn.port,
            schema=conn.schema,
            conn_type=conn.conn_type,
        )
        self._budget = budget_for(self._config.fingerprint)
        return self._config

    @property
    def budget(self) -> RateBudget:
        """The request budget this process shares among everyone using the same key."""
        if self._budget is None:
            raise RuntimeError("the connection has not been read yet")
        return self._budget

    def _read_answer(self, request: ApiRequest, status: int, headers: Any, text: str) -> WorkflowRun:
        """Parse an answer; error texts are scrubbed of the key in case the API echoes it."""
        assert self._config is not None
        self.budget.observe(parse_rate_limit(headers))
        try:
            return parse_response(request, status, headers, text)
        except AltaError as err:
            if isinstance(err, AltaRateLimitError) and err.retry_after is not None:
                self.budget.block(err.retry_after)
            if err.api_message:
                err.api_message = redact(err.api_message, [self._config.api_key])
                err.args = (err._render(),)
            raise

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        self.log.warning(
            "Alta request failed (%s); retrying in %.1f s (attempt %d)", exc, wait, state.attempt_number + 1
        )

    def _log_status(self, run: WorkflowRun, elapsed: float) -> None:
        self.log.info("Alta %s is %s after %.1f s", run.describe(), run.status.value, elapsed)

    def _log_notice(self, notice: Notice) -> None:
        self.log.log(notice.level, "%s", notice.message)

    def _waiter(
        self,
        workflow_run_id: str,
        config: AltaConnectionConfig,
        *,
        timeout: float | None,
        polling: PollingSettings | None,
        started_at: float | None,
        deadline: float | None,
        on_status: StatusCallback | None,
        on_notice: NoticeCallback | None,
    ) -> RunWaiter:
        ensure_positive_number(timeout, "timeout", allow_none=True)
        now = time.time()
        if deadline is None and timeout is not None:
            deadline = now + timeout
        schedule = PollSchedule(
            polling or PollingSettings(),
            started_at=started_at if started_at is not None else now,
            budget=self.budget,
            retry=config.retry,
        )
        return RunWaiter(
            workflow_run_id,
            schedule,
            deadline=deadline,
            on_status=on_status or self._log_status,
            outage=OutageReport(join_url(config.base_url, QUERY_PATH)),
            on_notice=on_notice or self._log_notice,
        )


class AltaHook(_AltaHookBase):
    """Talk to Alta from a worker: invoke a workflow, query a run, wait for it.

    :param alta_conn_id: an Airflow connection of type ``alta``: the API key in
        its password, the base URL in its host, options in its extras.

    One ``requests.Session`` per hook instance keeps connections alive across
    calls; close it with :meth:`close` or use the hook as a context manager.
    """

    def __init__(self, alta_conn_id: str = _AltaHookBase.default_conn_name, **kwargs: Any) -> None:
        super().__init__(alta_conn_id, **kwargs)
        self._session: requests.Session | None = None

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The connection form's extra fields, for Airflow 3.0/3.1 (3.2+ reads them from provider info)."""
        return legacy_connection_form(_connection_type())[0]

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden, relabelled and placeholder fields, for Airflow 3.0/3.1 (3.2+ reads them from provider info)."""
        return legacy_connection_form(_connection_type())[1]

    @property
    def config(self) -> AltaConnectionConfig:
        """The connection's settings, read on first use."""
        if self._config is None:
            return self._config_from(self._connection())
        return self._config

    @property
    def budget(self) -> RateBudget:
        """The request budget this process shares among everyone using the same key."""
        if self._budget is None:
            self._config_from(self._connection())
        return super().budget

    def _connection(self) -> Any:
        try:
            return self.get_connection(self.alta_conn_id)
        except AirflowNotFoundException:
            raise missing_connection(self.alta_conn_id) from None

    def get_conn(self) -> requests.Session:
        """The hook's HTTP session, created on first use."""
        if self._session is None:
            import requests

            self._session = requests.Session()
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> AltaHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send_once(self, request: ApiRequest, read_timeout: float) -> WorkflowRun:
        """One HTTP exchange, no retry: the answer parsed or a typed error raised."""
        import requests

        config = self.config
        session = self.get_conn()
        url = join_url(config.base_url, request.path)
        self._count(request)
        try:
            response = session.post(
                url,
                data=request.payload,
                headers=config.headers,
                timeout=(config.connect_timeout, read_timeout),
                # Per request, not on the session: requests lets REQUESTS_CA_BUNDLE override session.verify.
                verify=config.verify,
                proxies=config.proxies,
            )
        except requests.RequestException as exc:
            raise _requests_transport_error(request, url, exc) from exc
        status, headers = response.status_code, response.headers
        try:
            # Strict, as the async hook: requests' ``.text`` would replace bytes it cannot decode, silently.
            text = str(response.content, _body_encoding(response.encoding), "strict")
        except UnicodeDecodeError as err:
            raise _undecodable(request, status, err) from None
        # The response holds the body's bytes: let them go before the text is parsed, so a large answer is
        # in memory twice at most (text and objects), not three times.
        del response
        return self._read_answer(request, status, headers, text)

    def _hold_for_budget(self, *, for_poll: bool) -> None:
        """Wait out a ``Retry-After`` or an empty window the key already told us about."""
        while (wait := self.budget.acquire(for_poll=for_poll)) > 0:
            if wait > self.config.retry.max_wait:
                raise AltaRateLimitError(
                    f"The API key's rate limit is exhausted for another {wait:.0f} s; nothing was sent",
                    retry_after=wait,
                )
            time.sleep(wait)

    def _call(self, request: ApiRequest, read_timeout: float) -> WorkflowRun:
        import tenacity

        def attempt() -> WorkflowRun:
            self._hold_for_budget(for_poll=False)
            return self._send_once(request, read_timeout)

        retrying = tenacity.Retrying(**tenacity_kwargs(request, self.config.retry, self._log_retry))
        try:
            return retrying(attempt)
        except AltaError as exc:
            final = outcome_unknown(request, exc)
            if final is exc:
                raise
            raise final from exc

    def invoke_workflow(
        self,
        input: dict[str, Any],
        *,
        user_id: str | None = None,
        is_async: bool = False,
        webhooks: list[dict[str, Any]] | None = None,
    ) -> WorkflowRun:
        """Start the connection's workflow with ``input``.

        Synchronous (default): blocks until the run ends, up to the
        ``sync_invoke_timeout`` extra, and returns the finished run.
        ``is_async=True``: returns at once with the PENDING run and its id.
        Never retried when the run may have started (see :mod:`~airflow_provider_alta._core.request_retry`).
        """
        body = build_invoke_body(input, user_id=user_id, is_async=is_async, webhooks=webhooks)
        config = self.config
        read_timeout = config.read_timeout if is_async else config.sync_invoke_timeout
        return self._call(invoke_request(body), read_timeout)

    def get_run(self, workflow_run_id: str) -> WorkflowRun:
        """The run's current state (``POST /v1/workflow/query/result``), retried on transient errors."""
        request = query_request(ensure_run_id(workflow_run_id))
        return self._call(request, self.config.read_timeout)

    def wait_for_run(
        self,
        workflow_run_id: str,
        *,
        timeout: float | None = None,
        polling: PollingSettings | None = None,
        started_at: float | None = None,
        deadline: float | None = None,
        on_status: StatusCallback | None = None,
        initial: WorkflowRun | None = None,
        on_notice: NoticeCallback | None = None,
    ) -> WorkflowRun:
        """Poll until the run ends and return it (SUCCEED or FAILED alike).

        Polls on the adaptive schedule of :mod:`polling`, sharing the key's
        budget. Transient errors are waited out up to a bound; ``timeout``
        (seconds) or ``deadline`` (Unix time) raise :class:`AltaTimeoutError`.
        ``initial`` is a state already known (e.g. the invoke's answer): the
        first query then waits a full interval instead of going out at once.
        A streak of failed queries is logged (throttled, see
        :class:`~airflow_provider_alta._core.waiting.OutageReport`) through
        ``on_notice``, by default to this hook's log.
        """
        request = query_request(ensure_run_id(workflow_run_id))
        waiter = self._waiter(
            request.body["workflowRunId"],
            self.config,
            timeout=timeout,
            polling=polling,
            started_at=started_at,
            deadline=deadline,
            on_status=on_status,
            on_notice=on_notice,
        )
        read_timeout = self.config.read_timeout
        self.budget.register_poller()
        try:
            if initial is not None:
                first = waiter.after_answer(initial, time.time())
                if first is None:
                    return initial
                time.sleep(first)
            while True:
                wait = waiter.before_send(time.time())
                if wait > 0:
                    time.sleep(wait)
                    continue
                try:
                    run = self._send_once(request, read_timeout)
                except AltaError as exc:
                    delay = waiter.after_error(exc, time.time())
                else:
                    answer = waiter.after_answer(run, time.time())
                    if answer is None:
                        return run
                    delay = answer
                time.sleep(delay)
        finally:
            self.budget.unregister_poller()

    def test_connection(self) -> tuple[bool, str]:
        """Check the key with a harmless call: query a run id that cannot exist.

        Alta has no "who am I" endpoint. A 404 for the made-up run means the
        key was accepted; 401/403 means it was not. Nothing is invoked, so no
        credits are spent.
        """
        request = query_request(f"{CONNECTION_TEST_RUN_ID}-{uuid.uuid4().hex}")
        try:
            self._send_once(request, self.config.read_timeout)
        except AltaNotFoundError:
            return True, f"Connection OK: Alta at {self.config.base_url} accepted the API key"
        except AltaError as err:
            # The run id was made up for the test: naming it would only mislead.
            err.workflow_run_id = None
            where = "" if isinstance(err, AltaTransportError) else f" (Alta at {self.config.base_url})"
            return False, f"{err._render()}{where}"
        return True, f"Connection OK: Alta at {self.config.base_url} answered"


def missing_connection(conn_id: str) -> AltaValidationError:
    """Airflow's "isn't defined", with the three ways to define an Alta connection."""
    example = '{"conn_type": "alta", "host": "https://altatech.ai", "password": "<API key>"}'
    return AltaValidationError(
        f"the Airflow connection {conn_id!r} does not exist; create it with type 'alta' and the workflow's API "
        f"key as password: in the UI (Admin > Connections), with `airflow connections add {conn_id} ...`, or as "
        f"AIRFLOW_CONN_{conn_id.upper()}='{example}'"
    )


def _connection_type() -> dict[str, Any]:
    from airflow_provider_alta.get_provider_info import get_provider_info

    entry: dict[str, Any] = get_provider_info()["connection-types"][0]
    return entry


def _requests_transport_error(request: ApiRequest, url: str, exc: Exception) -> AltaTransportError:
    """Map a requests failure, deciding whether the request can have reached Alta."""
    import requests
    from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NameResolutionError, NewConnectionError

    reason = exc.args[0] if exc.args else None
    inner = reason.reason if isinstance(reason, MaxRetryError) else reason
    # A TLS handshake failure happens before the request is written: "not sent" too.
    if isinstance(exc, requests.exceptions.SSLError):
        return transport_error(request, url, "tls", str(inner or exc))
    if isinstance(inner, NameResolutionError):
        return transport_error(request, url, "unresolved")
    if isinstance(inner, NewConnectionError) and not isinstance(exc, requests.ConnectTimeout):
        # Before ConnectTimeoutError: urllib3 2 still derives NewConnectionError from it.
        return transport_error(request, url, "refused" if "refused" in str(inner).lower() else "unreachable")
    if isinstance(exc, requests.ConnectTimeout) or isinstance(inner, ConnectTimeoutError):
        return transport_error(request, url, "connect_timeout")
    if isinstance(exc, requests.ReadTimeout):
        return transport_error(request, url, "read_timeout")
    return transport_error(request, url, "dropped", type(exc).__name__)


#: What each transport failure means for the user; ``sent`` is whether the request can have reached Alta.
_TRANSPORT_FAILURES: dict[str, tuple[bool, str]] = {
    "refused": (False, "Could not connect to Alta at {url}: connection refused (is the server running there?)"),
    "unresolved": (False, "Could not connect to Alta at {url}: the host name does not resolve"),
    "connect_timeout": (False, "Could not connect to Alta at {url}: no answer within connect_timeout"),
    "unreachable": (False, "Could not connect to Alta at {url} (refused, unresolvable or unreachable)"),
    "tls": (False, "The TLS handshake with Alta at {url} failed ({detail})"),
    "read_timeout": (True, "Alta at {url} did not answer within the read timeout"),
    "dropped": (True, "The connection to Alta at {url} failed mid-request ({detail})"),
}


def transport_error(request: ApiRequest, url: str, kind: str, detail: str = "") -> AltaTransportError:
    """One wording for a transport failure, whichever HTTP client met it; the URL is named, never the key.

    A TLS failure against a server that does not speak TLS (a plain-HTTP server behind an ``https://`` URL)
    says so, instead of pointing at certificate settings.
    """
    sent, cause = _TRANSPORT_FAILURES[kind]
    if kind == "tls":
        lowered = detail.lower()
        if "wrong version number" in lowered or "record layer failure" in lowered or "http request" in lowered:
            detail = "the server does not speak TLS; if it serves plain HTTP, write the Base URL as http://"
        elif "certificate" in lowered:
            detail = "certificate not trusted; see the connection's 'verify' extra"
    cause = cause.format(url=url, detail=detail)
    if not sent:
        cause += "; the request was not sent. Check the connection's Base URL (host)"
    return AltaTransportError(cause, sent=sent, endpoint=request.endpoint, workflow_run_id=request.workflow_run_id)


class _SessionPool:
    """One aiohttp session per (event loop, base URL, TLS and proxy settings), reference counted.

    All triggers of a triggerer process that talk to the same Alta share one
    connection pool; the session closes when its last user is done.
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
            ssl: Any = True
            if config.verify is False:
                ssl = False
            elif isinstance(config.verify, str):
                import ssl as ssl_module

                ssl = ssl_module.create_default_context(cafile=config.verify)
            connector = aiohttp.TCPConnector(limit=100, ssl=ssl)
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


session_pool = _SessionPool()


class AltaAsyncHook(_AltaHookBase):
    """Query Alta from a trigger without blocking the event loop.

    Only queries live here: ``invoke`` is never called from a trigger (a
    trigger may run twice; a second invoke would be a second paid run).
    Use as ``async with AltaAsyncHook(conn_id) as hook:`` so the shared
    session is released.
    """

    def __init__(self, alta_conn_id: str = _AltaHookBase.default_conn_name, **kwargs: Any) -> None:
        super().__init__(alta_conn_id, **kwargs)
        self._session: aiohttp.ClientSession | None = None
        self._timeout: aiohttp.ClientTimeout | None = None

    async def aconfig(self) -> AltaConnectionConfig:
        """The connection's settings, read without blocking the event loop on first use."""
        if self._config is None:
            try:
                conn = await aget_connection(self.alta_conn_id)
            except AirflowNotFoundException:
                raise missing_connection(self.alta_conn_id) from None
            return self._config_from(conn)
        return self._config

    async def __aenter__(self) -> AltaAsyncHook:
        config = await self.aconfig()
        if self._session is None:
            self._session = session_pool.acquire(config)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._session is not None and self._config is not None:
            self._session = None
            await session_pool.release(self._config)

    async def _send_once(self, request: ApiRequest) -> WorkflowRun:
        import aiohttp

        if self._session is None:
            await self.__aenter__()
        assert self._session is not None and self._config is not None
        config = self._config
        if self._timeout is None:
            self._timeout = aiohttp.ClientTimeout(
                sock_connect=config.connect_timeout, sock_read=config.read_timeout, total=None
            )
        url = join_url(config.base_url, request.path)
        self._count(request)
        try:
            async with self._session.post(
                url,
                data=request.payload,
                headers=config.headers,
                timeout=self._timeout,
                proxy=config.proxy_url,
            ) as response:
                status, headers = response.status, response.headers
                try:
                    text = await _read_text(response)
                except UnicodeDecodeError as err:
                    raise _undecodable(request, status, err) from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise _aiohttp_transport_error(request, url, exc) from exc
        return self._read_answer(request, status, headers, text)

    async def get_run(self, workflow_run_id: str) -> WorkflowRun:
        """The run's current state, retried on transient errors like :meth:`AltaHook.get_run`."""
        import tenacity

        request = query_request(ensure_run_id(workflow_run_id))
        config = await self.aconfig()
        retrying = tenacity.AsyncRetrying(**tenacity_kwargs(request, config.retry, self._log_retry))
        return await retrying(self._send_once, request)

    async def wait_for_run(
        self,
        workflow_run_id: str,
        *,
        timeout: float | None = None,
        polling: PollingSettings | None = None,
        started_at: float | None = None,
        deadline: float | None = None,
        on_status: StatusCallback | None = None,
        initial: WorkflowRun | None = None,
        on_notice: NoticeCallback | None = None,
    ) -> WorkflowRun:
        """Poll until the run ends, exactly as :meth:`AltaHook.wait_for_run` does, without blocking."""
        request = query_request(ensure_run_id(workflow_run_id))
        waiter = self._waiter(
            request.body["workflowRunId"],
            await self.aconfig(),
            timeout=timeout,
            polling=polling,
            started_at=started_at,
            deadline=deadline,
            on_status=on_status,
            on_notice=on_notice,
        )
        self.budget.register_poller()
        try:
            if initial is not None:
                first = waiter.after_answer(initial, time.time())
                if first is None:
                    return initial
                await asyncio.sleep(first)
            while True:
                wait = waiter.before_send(time.time())
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                try:
                    run = await self._send_once(request)
                except AltaError as exc:
                    delay = waiter.after_error(exc, time.time())
                else:
                    answer = waiter.after_answer(run, time.time())
                    if answer is None:
                        return run
                    delay = answer
                await asyncio.sleep(delay)
        finally:
            self.budget.unregister_poller()


async def _read_text(response: aiohttp.ClientResponse) -> str:
    """The body decoded as ``response.text()`` decodes it, read into one buffer released before parsing.

    ``text()`` keeps every chunk of the body until the last one arrives, joins them, and the response
    keeps the joined bytes while the text is parsed. Here each chunk is freed as soon as it is copied,
    and the buffer as soon as it is decoded. The encoding is the one aiohttp picks for the pool's
    sessions: the declared charset when Python knows it, else UTF-8 (aiohttp's default fallback).
    """
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
    text = body.decode(_body_encoding(response.charset))
    del body
    return text


def _body_encoding(declared: str | None) -> str:
    """The declared charset when Python knows it, else UTF-8 (JSON's own encoding)."""
    if declared:
        with contextlib.suppress(LookupError, ValueError):
            return codecs.lookup(declared).name
    return "utf-8"


def _undecodable(request: ApiRequest, status: int, err: UnicodeDecodeError) -> AltaInvalidResponseError:
    return AltaInvalidResponseError(
        f"Alta answered HTTP {status} with a body that is not valid {err.encoding} ({err.reason} at byte {err.start})",
        status=status,
        endpoint=request.endpoint,
        workflow_run_id=request.workflow_run_id,
    )


def _aiohttp_transport_error(request: ApiRequest, url: str, exc: Exception) -> AltaTransportError:
    import aiohttp

    if isinstance(exc, (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError)):
        return transport_error(request, url, "tls", str(exc))
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return transport_error(request, url, "connect_timeout")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return transport_error(request, url, "unresolved")
    if isinstance(exc, aiohttp.ClientConnectorError):
        refused = isinstance(exc.os_error, ConnectionRefusedError)
        return transport_error(request, url, "refused" if refused else "unreachable")
    if isinstance(exc, asyncio.TimeoutError):
        return transport_error(request, url, "read_timeout")
    return transport_error(request, url, "dropped", type(exc).__name__)
