"""What a failure on the wire means: one wording for both HTTP clients, and whether the request can have been sent."""

from __future__ import annotations

import asyncio
import socket

import pytest

from airflow_provider_alta._core.protocol import invoke_request, query_request
from airflow_provider_alta._transport.errors import (
    TRANSPORT_FAILURES,
    aiohttp_transport_error,
    give_up,
    requests_transport_error,
    transport_error,
    undecodable,
)
from airflow_provider_alta.exceptions import AltaInvokeOutcomeUnknownError, AltaServerError, AltaTransportError

INVOKE = invoke_request({"input": {}})
QUERY = query_request("run-7")
URL = "https://alta.example/v1/workflow/invoke"


@pytest.mark.parametrize(("kind", "sent"), [(kind, sent) for kind, (sent, _) in TRANSPORT_FAILURES.items()])
def test_each_failure_says_whether_the_request_was_sent(kind, sent):
    err = transport_error(QUERY, URL, kind, "detail")
    assert err.sent is sent and URL in str(err)
    assert ("the request was not sent" in str(err)) is (not sent)
    assert err.endpoint == "POST /v1/workflow/query/result" and err.workflow_run_id == "run-7"


@pytest.mark.parametrize(
    ("detail", "said"),
    [
        ("[SSL: WRONG_VERSION_NUMBER] wrong version number", "the server does not speak TLS"),
        ("[SSL] record layer failure", "the server does not speak TLS"),
        ("certificate verify failed: self-signed certificate", "see the connection's 'verify' extra"),
        ("handshake aborted", "handshake aborted"),
    ],
)
def test_a_tls_failure_names_its_likely_cause(detail, said):
    assert said in str(transport_error(INVOKE, URL, "tls", detail))


def _refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1/workflow/invoke"


def test_requests_and_aiohttp_failures_map_to_the_same_error():
    """A real refused connection, met by each client, reads the same."""
    import aiohttp
    import requests

    url = _refused_url()
    with pytest.raises(requests.RequestException) as by_requests:
        requests.post(url, timeout=5)

    async def post() -> None:
        async with aiohttp.ClientSession() as session, session.post(url):
            pass

    with pytest.raises(aiohttp.ClientError) as by_aiohttp:
        asyncio.run(post())
    mapped = [
        requests_transport_error(INVOKE, url, by_requests.value),
        aiohttp_transport_error(INVOKE, url, by_aiohttp.value),
    ]
    assert [str(err) for err in mapped] == [str(transport_error(INVOKE, url, "refused"))] * 2
    assert all(err.sent is False for err in mapped)


def test_aiohttp_read_timeout_counts_as_sent():
    err = aiohttp_transport_error(INVOKE, URL, asyncio.TimeoutError())
    assert err.sent is True and "did not answer within the read timeout" in str(err)


def test_an_undecodable_body_names_the_encoding_and_where():
    try:
        b"{\xff}".decode("utf-8")
    except UnicodeDecodeError as exc:
        err = undecodable(QUERY, 200, exc)
    assert "HTTP 200 with a body that is not valid utf-8" in str(err) and "at byte 1" in str(err)
    assert err.workflow_run_id == "run-7"


def test_give_up_says_when_an_invoke_may_have_started_a_run():
    ambiguous = AltaServerError("boom", status=500)
    with pytest.raises(AltaInvokeOutcomeUnknownError) as on_invoke:
        give_up(INVOKE, ambiguous)
    assert on_invoke.value.__cause__ is ambiguous
    with pytest.raises(AltaServerError) as on_query:
        give_up(QUERY, ambiguous)
    assert on_query.value is ambiguous
    refused = AltaTransportError("refused", sent=False)
    with pytest.raises(AltaTransportError) as not_sent:
        give_up(INVOKE, refused)
    assert not_sent.value is refused
