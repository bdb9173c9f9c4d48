"""The per-key limits over HTTP: the rate window and the runs in flight."""

from __future__ import annotations

import re
import time

import pytest

from airflow_provider_alta.testing.client import EmulatorClient
from airflow_provider_alta.testing.runner import EmulatorThread
from airflow_provider_alta.testing.workflows import DEFAULT_API_KEY, WorkflowConfig
from tests.testing.wire import INVOKE, QUERY, post, query, start_run, wait_for


def test_rate_limit_headers_and_429(alta_emulator):
    alta_emulator.configure(rate_limit=2, rate_window=30)
    seen = [post(alta_emulator.url, QUERY, {"workflowRunId": "m"}) for _ in range(3)]
    assert [s[0] for s in seen] == [404, 404, 429]
    assert seen[0][1]["X-RateLimit-Remaining"] == "1"
    assert int(seen[2][1]["Retry-After"]) > 0 and seen[2][1]["X-RateLimit-Remaining"] == "0"
    assert seen[2][2]["error"]["code"] == "RATE_LIMITED"
    assert alta_emulator.key_stats()["rate_limited"] == 1


def test_a_keys_first_window_can_be_under_way_already(alta_emulator):
    alta_emulator.configure(rate_limit=1000, rate_window=3600.0, rate_window_age=3300.0, rate_used_before=400)
    before = time.time()
    _, headers, _ = start_run(alta_emulator.url, {"topic": "x"})
    assert headers["X-RateLimit-Remaining"] == "599"
    assert before + 295 <= int(headers["X-RateLimit-Reset"]) <= before + 302


def test_an_invoke_beyond_the_concurrency_limit_is_refused_and_starts_nothing(alta_emulator):
    alta_emulator.configure(concurrency_limit=2, duration=0.5, rate_limit=100)
    first, second = (start_run(alta_emulator.url, {"topic": str(i)}) for i in range(2))
    status, headers, answer = start_run(alta_emulator.url, {"topic": "third"})
    assert (first[0], second[0]) == (200, 200)
    assert status == 429
    assert answer["error"] == {
        "code": "CONCURRENCY_LIMIT_EXCEEDED",
        "message": "2 runs in flight for this API key, the most it may have (retry when one ends)",
        "status": 429,
    }
    # When the first run ends (decimal seconds), not the rate window's reset; the window was not spent.
    assert re.fullmatch(r"\d+\.\d\d", headers["Retry-After"]) and 0 < float(headers["Retry-After"]) <= 0.5
    assert headers["X-RateLimit-Remaining"] == "97"
    counters = alta_emulator.key_stats()
    assert (counters["runs"], counters["invokes"], counters["concurrency_refused"]) == (2, 2, 1)
    assert alta_emulator.invoke_count() == 2 and alta_emulator.stats()["runs"] == 2


def test_a_slot_frees_when_a_run_ends(alta_emulator):
    alta_emulator.configure(concurrency_limit=1, duration=0.2)
    _, _, body = start_run(alta_emulator.url, {"topic": "a"})
    assert start_run(alta_emulator.url, {"topic": "b"})[0] == 429
    wait_for(lambda: query(alta_emulator.url, body["workflowRunId"])["status"] == "SUCCEED")
    assert start_run(alta_emulator.url, {"topic": "b"})[0] == 200
    counters = alta_emulator.key_stats()
    assert (counters["runs"], counters["in_flight"], counters["peak_in_flight"]) == (2, 1, 1)


def test_a_synchronous_run_is_in_flight_while_it_runs(alta_emulator):
    import threading

    alta_emulator.configure(concurrency_limit=1, duration=0.5)
    answers: list = []

    def invoke_and_wait() -> None:
        answers.append(post(alta_emulator.url, INVOKE, {"input": {"topic": "a"}}))

    waiting = threading.Thread(target=invoke_and_wait)
    waiting.start()
    wait_for(lambda: alta_emulator.key_stats()["in_flight"] == 1)
    assert start_run(alta_emulator.url, {"topic": "b"})[0] == 429
    waiting.join(10)
    assert answers[0][0] == 200 and answers[0][2]["status"] == "SUCCEED"


def test_the_limit_is_per_key(alta_emulator):
    alta_emulator.configure(concurrency_limit=1, duration=5)
    alta_emulator.configure(api_key="sk-other", concurrency_limit=1, duration=5)
    assert start_run(alta_emulator.url, {"topic": "a"})[0] == 200
    assert start_run(alta_emulator.url, {"topic": "a"}, key="sk-other")[0] == 200
    assert start_run(alta_emulator.url, {"topic": "b"})[0] == 429


def test_a_refused_input_is_refused_whatever_the_runs_in_flight(alta_emulator):
    alta_emulator.configure(concurrency_limit=1, duration=5)
    start_run(alta_emulator.url, {"topic": "a"})
    status, _, answer = start_run(alta_emulator.url, {"nope": 1})
    assert (status, answer["error"]["code"]) == (400, "INVALID_INPUT")


def test_the_emulators_limit_applies_to_every_key_unless_its_workflow_sets_one():
    workflows = {DEFAULT_API_KEY: WorkflowConfig(duration=5), "sk-wide": WorkflowConfig(duration=5)}
    with EmulatorThread(workflows, concurrency_limit=1) as server:
        assert start_run(server.url, {"topic": "a"})[0] == 200
        assert start_run(server.url, {"topic": "b"})[0] == 429
        EmulatorClient(server.url).configure("sk-wide", duration=5, concurrency_limit=2)
        assert [start_run(server.url, {"topic": t}, key="sk-wide")[0] for t in "abc"] == [200, 200, 429]
        assert server.emulator.stats()["concurrency_limit"] == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_a_concurrency_limit_is_a_whole_number_of_runs(alta_emulator, bad):
    import urllib.error

    with pytest.raises(urllib.error.HTTPError):
        alta_emulator.configure(concurrency_limit=bad)
