"""Webhook delivery over HTTP: each webhook of an async run is called once when the run ends."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

from tests.testing.wire import INVOKE, post, wait_for


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list] = []

    def _record(self):
        length = int(self.headers.get("Content-Length") or 0)
        _Receiver.received.append(
            (self.command, self.path, self.headers.get("X-Token"), self.rfile.read(length) if length else b"")
        )
        self.send_response(204)
        self.end_headers()

    do_POST = do_GET = _record

    def log_message(self, *args):
        pass


def invoke_with_hooks(url: str, hooks: list) -> dict:
    status, _, body = post(url, INVOKE, {"input": {"topic": "x"}, "isAsync": True, "webhook": hooks})
    assert status == 200
    return body


def test_webhooks_delivered_on_completion(alta_emulator):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    _Receiver.received.clear()
    try:
        alta_emulator.configure(duration=0.3)
        body = invoke_with_hooks(
            alta_emulator.url,
            [
                {"method": "POST", "url": base + "/p", "headers": {"X-Token": "t1"}},
                {"method": "GET", "url": base + "/g?a=1"},
            ],
        )
        wait_for(lambda: len(alta_emulator.stats()["webhook_deliveries"]) == 2)
    finally:
        server.shutdown()
    deliveries = alta_emulator.stats()["webhook_deliveries"]
    assert {d["status"] for d in deliveries} == {204}
    assert deliveries[0]["header_names"] == ["X-Token"]
    by_method = {r[0]: r for r in _Receiver.received}
    assert by_method["POST"][2] == "t1"
    assert json.loads(by_method["POST"][3])["status"] == "SUCCEED"
    assert f"workflowRunId={body['workflowRunId']}" in by_method["GET"][1] and "status=SUCCEED" in by_method["GET"][1]


def test_copies_repeat_a_delivery_and_a_failed_receiver_is_recorded(alta_emulator):
    alta_emulator.configure(duration=0, webhook_copies=2)
    sink = [{"method": "POST", "url": f"{alta_emulator.url}/_emulator/sink", "headers": {"X-Token": "secret"}}]
    gone = [{"method": "POST", "url": "http://127.0.0.1:9/nowhere"}]
    invoke_with_hooks(alta_emulator.url, sink)
    invoke_with_hooks(alta_emulator.url, gone)
    deliveries = wait_for(lambda: len(d := alta_emulator.stats()["webhook_deliveries"]) == 4 and d)
    assert sorted(str(d.get("status", d.get("error"))) for d in deliveries) == [
        "204",
        "204",
        "ClientConnectorError",
        "ClientConnectorError",
    ]
    sunk = alta_emulator.stats()["sink"]
    assert len(sunk) == 2 and "X-Token" in sunk[0]["header_names"] and "secret" not in json.dumps(deliveries)
