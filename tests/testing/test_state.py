"""What the emulator counts and keeps, read over HTTP: the counters per key, duplicates, bounded logs."""

from __future__ import annotations

import asyncio

import aiohttp

from airflow_provider_alta.testing.app import AltaEmulator
from airflow_provider_alta.testing.model import key_id
from airflow_provider_alta.testing.workflows import DEFAULT_API_KEY
from tests.testing.wire import query, start_run

AUTH = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}


def test_counters_of_a_batch(alta_emulator):
    alta_emulator.configure(duration=5, concurrency_limit=3, input_schema=None)
    for item in [{"id": 1}, {"id": 2}, {"id": 1}, {"id": 3, "_alta_emulator": {"refuse": 422}}, {"id": 4}]:
        start_run(alta_emulator.url, item)
    query(alta_emulator.url, "no-such-run")
    counters = alta_emulator.key_stats()
    assert counters == {
        "invokes": 4,
        "runs": 3,
        "refused_inputs": 1,
        "concurrency_refused": 1,
        "rate_limited": 0,
        "queries": 1,
        "in_flight": 3,
        "peak_in_flight": 3,
        "distinct_inputs": 2,
        "duplicate_runs": 1,
        "duplicate_inputs": [{"id": 1}],
    }
    assert alta_emulator.key_stats("sk-never-used")["runs"] == 0


def test_inputs_are_told_apart_by_content_whatever_their_key_order(alta_emulator):
    alta_emulator.configure(duration=0, input_schema=None)
    start_run(alta_emulator.url, {"a": 1, "b": 2})
    start_run(alta_emulator.url, {"b": 2, "a": 1})
    start_run(alta_emulator.url, {"a": 1, "b": 3})
    counters = alta_emulator.key_stats()
    assert (counters["distinct_inputs"], counters["duplicate_runs"]) == (2, 1)


def test_stats_without_logs_leave_the_logs_out(alta_emulator):
    start_run(alta_emulator.url, {"topic": "x"})
    brief = alta_emulator.stats(logs=False)
    assert not {"request_log", "webhook_deliveries", "sink"} & set(brief)
    assert brief["requests"] == {"invoke": 1, "query": 0}
    assert brief["invokes_by_key"] == {key_id(DEFAULT_API_KEY): 1}
    full = alta_emulator.stats()
    assert [(e["endpoint"], e["status"], e["key"]) for e in full["request_log"]] == [
        ("invoke", 200, key_id(DEFAULT_API_KEY))
    ]


def test_a_reset_forgets_runs_and_counters(alta_emulator):
    start_run(alta_emulator.url, {"topic": "x"})
    alta_emulator.reset()
    stats = alta_emulator.stats()
    assert (stats["runs"], stats["keys"], stats["request_log"], stats["requests"]["invoke"]) == (0, {}, [], 0)


async def test_logs_keep_their_last_entries_and_counters_count_all():
    emulator = AltaEmulator(log_size=5)
    emulator.workflows[DEFAULT_API_KEY].duration = 0
    serving = await emulator.start()
    url = f"http://127.0.0.1:{serving.port}"
    try:
        async with aiohttp.ClientSession(headers=AUTH) as session:
            for i in range(12):
                body = {"input": {"topic": str(i)}, "isAsync": True}
                async with session.post(f"{url}/v1/workflow/invoke", json=body) as answer:
                    assert answer.status == 200
            async with session.get(f"{url}/_emulator/stats") as answer:
                stats = await answer.json()
    finally:
        await serving.stop()
    assert len(stats["request_log"]) == 5 and stats["requests"]["invoke"] == 12 and stats["runs"] == 12
    assert stats["keys"][key_id(DEFAULT_API_KEY)]["runs"] == 12


def deliveries_waiting() -> list[asyncio.Task]:
    return [task for task in asyncio.all_tasks() if "deliver" in task.get_coro().__qualname__]


async def test_many_runs_leave_nothing_running_behind():
    """Each run with a webhook has one task until its delivery; none stays once the runs have ended."""
    emulator = AltaEmulator()
    emulator.workflows[DEFAULT_API_KEY].duration = 0.05
    serving = await emulator.start()
    url = f"http://127.0.0.1:{serving.port}"
    hook = [{"method": "POST", "url": f"{url}/_emulator/sink"}]
    try:
        async with aiohttp.ClientSession(headers=AUTH) as session:
            for i in range(200):
                run_input = {"topic": str(i), **({"_alta_emulator": {"duration": 1}} if i == 0 else {})}
                body = {"input": run_input, "isAsync": True, "webhook": hook}
                async with session.post(f"{url}/v1/workflow/invoke", json=body) as answer:
                    assert answer.status == 200
                if i == 0:
                    assert len(deliveries_waiting()) == 1  # until the run ends, a second from now
            for _ in range(500):
                if len(emulator.deliveries) == 200:
                    break
                await asyncio.sleep(0.02)
            assert len(emulator.deliveries) == 200 and len(emulator.sunk) == 200
            for _ in range(100):
                if not deliveries_waiting():
                    break
                await asyncio.sleep(0.02)
            assert deliveries_waiting() == []
            assert emulator.in_flight.count(DEFAULT_API_KEY, float("inf")) == 0
    finally:
        await serving.stop()
