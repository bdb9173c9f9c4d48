"""Both hooks decode an answer's body as their HTTP client does: the declared charset, else UTF-8 for JSON."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from airflow_provider_alta._core.ratelimit import reset_budgets
from airflow_provider_alta.hooks.alta import AltaAsyncHook, AltaHook

RUN = {"workflowRunId": "run-1", "status": "SUCCEED", "output": {"text": "café — 東京 ✓"}}


@pytest.fixture
def answering(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, object]]:
    """A server answering every POST with ``answer["body"]`` (bytes) and ``answer["content_type"]``."""
    answer: dict[str, object] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = answer["body"]
            assert isinstance(body, bytes)
            self.send_response(200)
            self.send_header("Content-Type", str(answer["content_type"]))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conn = {"conn_type": "alta", "host": f"http://127.0.0.1:{server.server_port}", "password": "key-for-decoding"}
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", json.dumps(conn))
    reset_budgets()
    yield answer
    server.shutdown()
    server.server_close()
    reset_budgets()


async def _async_get_run() -> object:
    async with AltaAsyncHook() as hook:
        return (await hook.get_run("run-1")).output


@pytest.mark.parametrize(
    ("content_type", "encoding"),
    [
        ("application/json", "utf-8"),
        ("application/json; charset=utf-16", "utf-16"),
        ("application/json; charset=UTF-8", "utf-8"),
    ],
)
def test_both_hooks_decode_the_declared_charset_or_utf8(answering, content_type, encoding):
    answering["body"] = json.dumps(RUN, ensure_ascii=False).encode(encoding)
    answering["content_type"] = content_type
    assert AltaHook().get_run("run-1").output == RUN["output"]
    assert asyncio.run(_async_get_run()) == RUN["output"]


def test_async_hook_reads_json_without_a_charset_as_utf8_whatever_its_type(answering):
    answering["body"] = json.dumps(RUN, ensure_ascii=False).encode()
    answering["content_type"] = "text/plain; charset=no-such-codec"
    assert asyncio.run(_async_get_run()) == RUN["output"]


def test_a_body_that_is_not_valid_utf8_is_a_typed_error_in_both_hooks(answering):
    """Latin-1 bytes where UTF-8 is due: a clear AltaInvalidResponseError naming the endpoint and the run."""
    from airflow_provider_alta.exceptions import AltaInvalidResponseError

    answering["content_type"] = "application/json"
    answering["body"] = json.dumps(RUN, ensure_ascii=False).encode("latin-1", errors="replace")
    with pytest.raises(AltaInvalidResponseError) as in_async:
        asyncio.run(_async_get_run())
    assert "not valid utf-8" in str(in_async.value) and in_async.value.workflow_run_id == "run-1"
    assert in_async.value.endpoint == "POST /v1/workflow/query/result"
    with pytest.raises(AltaInvalidResponseError) as in_sync:
        AltaHook().get_run("run-1")
    assert in_sync.value.workflow_run_id == "run-1"
