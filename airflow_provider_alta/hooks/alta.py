"""Hooks for the Alta workflow API.

:class:`AltaHook` (requests) serves workers; :class:`AltaAsyncHook` (aiohttp)
serves triggers, and a batch that runs many runs from one worker with asyncio.
Both are the face only: requests are built, answers parsed, errors typed and
retries and waits decided in :mod:`airflow_provider_alta._core` (``protocol``,
``request_retry``, ``waiting``); the bytes travel through :mod:`airflow_provider_alta._transport`.
``requests`` and ``aiohttp`` are imported only when a request is made, so a DAG
file importing an operator stays cheap to parse.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_provider_alta._airflow.version_compat import AirflowNotFoundException
from airflow_provider_alta._airflow.version_compat.hook import BaseHook, aget_connection, legacy_connection_form
from airflow_provider_alta._core.connection import CONN_TYPE, AltaConnectionConfig
from airflow_provider_alta._core.polling import PollingSettings
from airflow_provider_alta._core.protocol import QUERY_PATH, ApiRequest, invoke_request, join_url, query_request
from airflow_provider_alta._core.ratelimit import RateBudget, budget_for
from airflow_provider_alta._core.validation import build_invoke_body, ensure_run_id
from airflow_provider_alta._core.waiting import Notice, NoticeCallback, RunWaiter
from airflow_provider_alta._transport import aio, sync
from airflow_provider_alta._transport.aio import session_pool
from airflow_provider_alta._transport.reply import Reply, read_answer
from airflow_provider_alta.exceptions import (
    AltaError,
    AltaNotFoundError,
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


class WaitOptions(NamedTuple):
    """What a caller of ``wait_for_run`` says about the wait (see ``RunWaiter.for_query``)."""

    timeout: float | None
    polling: PollingSettings | None
    started_at: float | None
    deadline: float | None
    on_status: StatusCallback | None
    on_notice: NoticeCallback | None


class _AltaHookBase(BaseHook):
    """What both hooks share: the connection, the key's budget, reading answers, starting a wait, logging."""

    conn_name_attr = "alta_conn_id"
    default_conn_name = "alta_default"
    conn_type = CONN_TYPE
    hook_name = "Alta"

    def __init__(self, alta_conn_id: str = default_conn_name, config: AltaConnectionConfig | None = None, **kw: Any):
        """``config``: the connection's settings already read (a worker reads them before its event loop starts);
        the hook then never reads the connection itself, and shares that key's budget."""
        super().__init__(**kw)
        self.alta_conn_id = alta_conn_id
        self._config: AltaConnectionConfig | None = config
        self._budget: RateBudget | None = None if config is None else budget_for(config.fingerprint)
        #: Queries (``/v1/workflow/query/result``) this hook has sent, retries included: the run's metrics count them.
        self.queries_sent = 0

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

    def _count(self, request: ApiRequest) -> None:
        if request.path == QUERY_PATH:
            self.queries_sent += 1

    def _read(self, request: ApiRequest, reply: Reply) -> WorkflowRun:
        assert self._config is not None
        return read_answer(request, reply, self.budget, self._config)

    def _waiter(self, request: ApiRequest, config: AltaConnectionConfig, options: WaitOptions) -> RunWaiter:
        """The wait's state machine, logging to this hook unless the caller listens itself."""
        return RunWaiter.for_query(
            ensure_run_id(request.workflow_run_id),
            url=join_url(config.base_url, QUERY_PATH),
            now=time.time(),
            budget=self.budget,
            retry=config.retry,
            timeout=options.timeout,
            polling=options.polling,
            started_at=options.started_at,
            deadline=options.deadline,
            on_status=options.on_status or self._log_status,
            on_notice=options.on_notice or self._log_notice,
        )

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
            self._session = sync.new_session()
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
        config, session = self.config, self.get_conn()
        self._count(request)
        return self._read(request, sync.exchange(session, request, config, read_timeout))

    def _call(self, request: ApiRequest, read_timeout: float) -> WorkflowRun:
        """Send ``request`` as the retry policy of :mod:`~airflow_provider_alta._core.request_retry` allows."""
        send = partial(self._send_once, request, read_timeout)
        return sync.call(send, request, self.config.retry, self.budget, self._log_retry)

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
        options = WaitOptions(timeout, polling, started_at, deadline, on_status, on_notice)
        with self._waiter(request, self.config, options) as waiter:
            return sync.drive(waiter, initial, partial(self._send_once, request, self.config.read_timeout))

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


class AltaAsyncHook(_AltaHookBase):
    """Talk to Alta without blocking the event loop: a trigger's queries, or a batch's invokes and waits.

    A trigger only queries (:meth:`get_run`, :meth:`wait_for_run`); it never
    invokes, as it may run twice. Use as ``async with AltaAsyncHook(conn_id) as
    hook:`` so the session shared through the process' pool is released.
    """

    def __init__(self, alta_conn_id: str = _AltaHookBase.default_conn_name, **kwargs: Any) -> None:
        super().__init__(alta_conn_id, **kwargs)
        self._session: aiohttp.ClientSession | None = None

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

    async def _send_once(self, request: ApiRequest, read_timeout: float | None = None) -> WorkflowRun:
        """One HTTP exchange, no retry: the answer parsed or a typed error raised (default: the read timeout)."""
        if self._session is None:
            await self.__aenter__()
        assert self._session is not None and self._config is not None
        self._count(request)
        reply = await aio.exchange(self._session, request, self._config, read_timeout or self._config.read_timeout)
        return self._read(request, reply)

    async def invoke_workflow(
        self,
        input: dict[str, Any],
        *,
        user_id: str | None = None,
        is_async: bool = False,
        webhooks: list[dict[str, Any]] | None = None,
        retry: bool = True,
    ) -> WorkflowRun:
        """Start the connection's workflow with ``input``, as :meth:`AltaHook.invoke_workflow` does, without blocking.

        For code that runs many runs from one worker with asyncio (a batch).
        **A trigger must never call it**: a trigger may run twice, and is rebuilt
        after a triggerer restart, so an invoke there can start a second paid
        run. The retry policy is the sync hook's: an invoke is sent again only
        when it provably never reached Alta, or on a 429/503 that says it was
        not accepted; an outcome no answer confirmed raises
        :class:`~airflow_provider_alta.exceptions.AltaInvokeOutcomeUnknownError`.
        ``retry=False``: one attempt, raising what it met (a 429 too), for a caller deciding every retry (a batch).
        """
        body = build_invoke_body(input, user_id=user_id, is_async=is_async, webhooks=webhooks)
        config = await self.aconfig()
        request = invoke_request(body)
        send = partial(self._send_once, request, config.read_timeout if is_async else config.sync_invoke_timeout)
        if not retry:
            return await send()
        return await aio.call(send, request, config.retry, self.budget, self._log_retry)

    async def get_run(self, workflow_run_id: str, *, retry: bool = True) -> WorkflowRun:
        """The run's current state, retried on transient errors like :meth:`AltaHook.get_run` (``retry=False``: one
        attempt, for a caller that schedules its own queries, as a batch's plan does)."""
        request = query_request(ensure_run_id(workflow_run_id))
        config = await self.aconfig()
        if not retry:
            return await self._send_once(request)
        return await aio.call(partial(self._send_once, request), request, config.retry, None, self._log_retry)

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
        options = WaitOptions(timeout, polling, started_at, deadline, on_status, on_notice)
        with self._waiter(request, await self.aconfig(), options) as waiter:
            return await aio.drive(waiter, initial, partial(self._send_once, request))


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
