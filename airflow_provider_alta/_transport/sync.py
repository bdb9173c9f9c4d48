"""The worker's wire: ``requests``, one exchange at a time, and the blocking drivers of the core's decisions.

:func:`exchange` sends one request and hands back its :class:`~.reply.Reply`; :func:`call` repeats a request as
:mod:`airflow_provider_alta._core.request_retry` allows; :func:`drive` runs a
:class:`~airflow_provider_alta._core.waiting.RunWaiter` to its end. The drivers only send and sleep; the twins in
:mod:`.aio` do the same with ``await``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_alta._core.connection import AltaConnectionConfig
from airflow_provider_alta._core.protocol import ApiRequest, join_url
from airflow_provider_alta._core.ratelimit import RateBudget
from airflow_provider_alta._core.request_retry import RetrySettings, budget_wait, tenacity_kwargs
from airflow_provider_alta._core.waiting import RunWaiter
from airflow_provider_alta._transport.errors import give_up, requests_transport_error, undecodable
from airflow_provider_alta._transport.reply import Reply, body_encoding
from airflow_provider_alta.exceptions import AltaError
from airflow_provider_alta.models import WorkflowRun

if TYPE_CHECKING:
    import requests


def new_session() -> requests.Session:
    """A session that keeps connections alive across one hook's calls."""
    import requests

    return requests.Session()


def exchange(
    session: requests.Session, request: ApiRequest, config: AltaConnectionConfig, read_timeout: float
) -> Reply:
    """POST ``request`` and read the answer, strictly decoded; a failure on the way is a typed error."""
    import requests

    url = join_url(config.base_url, request.path)
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
        raise requests_transport_error(request, url, exc) from exc
    status = response.status_code
    try:
        # Strict, as over aiohttp: requests' ``.text`` would replace bytes it cannot decode, silently.
        text = str(response.content, body_encoding(response.encoding), "strict")
    except UnicodeDecodeError as err:
        raise undecodable(request, status, err) from None
    # The response, and the body's bytes with it, go when this returns, before the text is parsed: a large
    # answer is in memory twice at most (text and objects), not three times.
    return Reply(status, response.headers, text)


def call(
    send: Callable[[], WorkflowRun],
    request: ApiRequest,
    retry: RetrySettings,
    budget: RateBudget | None,
    on_retry: Callable[[Any], None],
) -> WorkflowRun:
    """``send`` ``request`` until it answers or the retry policy gives up; each attempt first waits for the key's
    ``budget`` (``None``: sends at once). A failure that may hide a started run is raised as such
    (:func:`.errors.give_up`)."""
    import tenacity

    def attempt() -> WorkflowRun:
        while budget is not None and (wait := budget_wait(budget, retry)) > 0:
            time.sleep(wait)
        return send()

    try:
        return tenacity.Retrying(**tenacity_kwargs(request, retry, on_retry))(attempt)
    except AltaError as exc:
        give_up(request, exc)


def drive(waiter: RunWaiter, initial: WorkflowRun | None, send: Callable[[], WorkflowRun]) -> WorkflowRun:
    """Run ``waiter`` to the ended run: send when it says send, sleep when it says sleep."""
    step = waiter.begin(initial, time.time())
    while step.run is None:
        if step.send:
            try:
                outcome: WorkflowRun | AltaError = send()
            except AltaError as exc:
                outcome = exc
            step = waiter.received(outcome, time.time())
        else:
            time.sleep(step.pause)
            step = waiter.awake(time.time())
    run: WorkflowRun = step.run
    return run
