"""``EmulatorThread``: the emulator in a background thread, started and stopped around a block."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from airflow_provider_alta.testing.runner import EmulatorThread
from tests.testing.wire import start_run


def test_serves_in_the_block_and_stops_after_it():
    with EmulatorThread(concurrency_limit=1) as server:
        assert server.url.startswith("http://127.0.0.1:") and server.port > 0
        assert start_run(server.url, {"topic": "x"})[0] == 200
        assert start_run(server.url, {"topic": "y"})[0] == 429  # the limit it was given
        url = server.url
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/_emulator/", timeout=2)


def test_a_port_in_use_is_reported():
    with EmulatorThread() as server, pytest.raises(RuntimeError, match="did not start"):
        EmulatorThread(port=server.port).start()


def test_a_bad_limit_is_refused_at_once():
    with pytest.raises(ValueError, match="concurrency_limit"):
        EmulatorThread(concurrency_limit=0)
