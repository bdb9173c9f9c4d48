"""What a failure on the wire means, whichever HTTP client met it: one typed error, one wording.

Each transport failure says whether the request can have reached Alta (``sent``): an invoke is sent again only
when it provably was not (:mod:`airflow_provider_alta._core.request_retry`). The URL is named, never the key.
"""

from __future__ import annotations

from typing import NoReturn

from airflow_provider_alta._core.protocol import ApiRequest
from airflow_provider_alta._core.request_retry import outcome_unknown
from airflow_provider_alta.exceptions import AltaError, AltaInvalidResponseError, AltaTransportError

#: What each transport failure means for the user; ``sent`` is whether the request can have reached Alta.
TRANSPORT_FAILURES: dict[str, tuple[bool, str]] = {
    "refused": (False, "Could not connect to Alta at {url}: connection refused (is the server running there?)"),
    "unresolved": (False, "Could not connect to Alta at {url}: the host name does not resolve"),
    "connect_timeout": (False, "Could not connect to Alta at {url}: no answer within connect_timeout"),
    "unreachable": (False, "Could not connect to Alta at {url} (refused, unresolvable or unreachable)"),
    "tls": (False, "The TLS handshake with Alta at {url} failed ({detail})"),
    "read_timeout": (True, "Alta at {url} did not answer within the read timeout"),
    "dropped": (True, "The connection to Alta at {url} failed mid-request ({detail})"),
}


def transport_error(request: ApiRequest, url: str, kind: str, detail: str = "") -> AltaTransportError:
    """The typed error for a failure of ``kind`` (a key of :data:`TRANSPORT_FAILURES`).

    A TLS failure against a server that does not speak TLS (a plain-HTTP server behind an ``https://`` URL)
    says so, instead of pointing at certificate settings.
    """
    sent, cause = TRANSPORT_FAILURES[kind]
    if kind == "tls":
        detail = _tls_detail(detail)
    cause = cause.format(url=url, detail=detail)
    if not sent:
        cause += "; the request was not sent. Check the connection's Base URL (host)"
    return AltaTransportError(cause, sent=sent, endpoint=request.endpoint, workflow_run_id=request.workflow_run_id)


def _tls_detail(detail: str) -> str:
    lowered = detail.lower()
    if "wrong version number" in lowered or "record layer failure" in lowered or "http request" in lowered:
        return "the server does not speak TLS; if it serves plain HTTP, write the Base URL as http://"
    if "certificate" in lowered:
        return "certificate not trusted; see the connection's 'verify' extra"
    return detail


def requests_transport_error(request: ApiRequest, url: str, exc: Exception) -> AltaTransportError:
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


def aiohttp_transport_error(request: ApiRequest, url: str, exc: Exception) -> AltaTransportError:
    """Map an aiohttp failure (or the read timeout's ``asyncio.TimeoutError``) the same way."""
    import asyncio

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


def undecodable(request: ApiRequest, status: int, err: UnicodeDecodeError) -> AltaInvalidResponseError:
    """A body that is not valid in its encoding: named with the endpoint and the run, as any unreadable answer."""
    return AltaInvalidResponseError(
        f"Alta answered HTTP {status} with a body that is not valid {err.encoding} ({err.reason} at byte {err.start})",
        status=status,
        endpoint=request.endpoint,
        workflow_run_id=request.workflow_run_id,
    )


def give_up(request: ApiRequest, exc: AltaError) -> NoReturn:
    """Raise a request's last failure, saying so plainly when an invoke may have started a run no answer confirmed."""
    final = outcome_unknown(request, exc)
    if final is exc:
        raise exc
    raise final from exc
