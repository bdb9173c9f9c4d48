"""A batch's notices end to end over 127.0.0.1: the emulator delivers real webhooks to the batch route of the
receiver (served by uvicorn, mounted at /alta, real metadata database), and the batch's reader reads them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from airflow_provider_alta._webhook.batch_contract import BatchNotice, batch_grant, batch_webhook
from airflow_provider_alta._webhook.batch_notice_reader import (
    BatchNoticeReader,
    BatchNoticesUnreadable,
    batch_notices_url,
)
from airflow_provider_alta._webhook.contract import WebhookSettings
from tests.plugins.batch_support import new_batch, rows
from tests.plugins.receiver_support import use_receiver

WEBHOOK_SECRET = "whs-batch-reader-SECRET-0c4f7d"
CONN_ID = "alta_default"


@pytest.fixture
def emulator(alta_conn, alta_emulator, receiver_url, monkeypatch) -> Any:
    """``alta_default`` on the emulator with a webhook secret; the receiver and the API server at ``receiver_url``."""
    use_receiver(monkeypatch, receiver_url, alta_emulator, WEBHOOK_SECRET, retry_backoff=0.2)
    alta_emulator.configure(duration=0.3)
    return alta_emulator


def invoke_items(batch_id: str, items: list[int]) -> dict[int, str]:
    """Invoke one async run per item, each naming its item's batch webhook; the run ids by item."""
    from airflow_provider_alta.hooks.alta import AltaHook

    hook, settings = AltaHook(), WebhookSettings.from_config()
    run_ids = {}
    for item in items:
        webhook = batch_webhook(settings, WEBHOOK_SECRET, "alta", batch_grant(settings, CONN_ID, batch_id, item))
        run_ids[item] = hook.invoke_workflow(
            {"topic": f"item {item}"}, is_async=True, webhooks=[webhook]
        ).workflow_run_id
    return run_ids


def delivered(emulator: Any, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    """The emulator's webhook deliveries, once there are ``count``."""
    deadline = time.time() + timeout
    while len(found := emulator.stats()["webhook_deliveries"]) < count:
        assert time.time() < deadline, f"only {len(found)} of {count} webhooks delivered"
        time.sleep(0.05)
    return list(found)


def by_item(notices: list[BatchNotice]) -> dict[int, tuple[str, str]]:
    return {n.item: (n.run.workflow_run_id, n.run.status.value) for n in notices}


async def read(reader: BatchNoticeReader) -> list[BatchNotice]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        return await reader.read(session)


def test_the_url_is_the_receiver_urls_base_with_the_batch_route(monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "https://airflow.example.com/sub/execution/")
    assert batch_notices_url() == "https://airflow.example.com/sub/alta/batch-notices/b1"


async def test_webhooks_delivered_by_alta_reach_the_batch_and_a_retry_reads_what_was_not_kept(emulator):
    batch = new_batch(CONN_ID)
    run_ids = await asyncio.to_thread(invoke_items, batch, [0, 1, 2])
    deliveries = await asyncio.to_thread(delivered, emulator, 3)
    assert sorted(d["status"] for d in deliveries) == [200, 200, 200]
    assert all(f"/alta/webhook/batch/b1/{CONN_ID}/{batch}/" in d["url"] for d in deliveries)

    reader = BatchNoticeReader(batch_notices_url(), CONN_ID, batch, WEBHOOK_SECRET)
    notices = await read(reader)
    assert by_item(notices) == {item: (run_id, "SUCCEED") for item, run_id in run_ids.items()}
    assert notices[0].run.output  # the run body as Alta delivered it
    assert await read(reader) == []  # handed over already: not again

    # A killed worker acknowledged nothing: its retry reads all three again, keeps them, and they are forgotten.
    retry = BatchNoticeReader(batch_notices_url(), CONN_ID, batch, WEBHOOK_SECRET)
    assert by_item(await read(retry)) == by_item(notices)
    retry.acknowledge()
    assert await read(retry) == [] and rows(batch) == []

    # More runs end later: the reader sees just them.
    later = await asyncio.to_thread(invoke_items, batch, [3])
    await asyncio.to_thread(delivered, emulator, 4)
    assert by_item(await read(retry)) == {3: (later[3], "SUCCEED")}


async def test_a_duplicated_webhook_is_read_once(emulator):
    emulator.configure(duration=0.3, webhook_copies=2)
    batch = new_batch(CONN_ID)
    run_ids = await asyncio.to_thread(invoke_items, batch, [7])
    deliveries = await asyncio.to_thread(delivered, emulator, 2)
    assert [d["status"] for d in deliveries] == [200, 200]
    notices = await read(BatchNoticeReader(batch_notices_url(), CONN_ID, batch, WEBHOOK_SECRET))
    assert by_item(notices) == {7: (run_ids[7], "SUCCEED")} and len(notices) == 1


async def test_reads_follow_pages_until_no_more(emulator):
    from airflow_provider_alta._webhook.batch_contract import MAX_NOTICES_PER_ANSWER, BatchGrant
    from airflow_provider_alta._webhook.batch_notice_store import BatchNoticeStore
    from tests.plugins.receiver_support import run_body

    batch, store = new_batch(CONN_ID), BatchNoticeStore()
    count = MAX_NOTICES_PER_ANSWER * 2 + 3
    for item in range(count):
        store.deliver(BatchGrant(CONN_ID, batch, item, int(time.time()) + 60), run_body(f"run-{item}"))
    reader = BatchNoticeReader(batch_notices_url(), CONN_ID, batch, WEBHOOK_SECRET)
    notices = await read(reader)
    assert [n.item for n in notices] == list(range(count))
    assert reader.requests_sent == 3


async def test_a_refused_read_names_the_url_and_the_result_but_never_the_secret(emulator):
    batch = new_batch(CONN_ID)
    wrong = BatchNoticeReader(batch_notices_url(), CONN_ID, batch, "a-wrong-secret-0123456789")
    with pytest.raises(BatchNoticesUnreadable) as refused:
        await read(wrong)
    message = str(refused.value)
    assert batch_notices_url() in message and "401 unauthorized" in message
    assert refused.value.status == 401 and refused.value.result == "unauthorized"
    assert "a-wrong-secret" not in message + repr(wrong)


async def test_an_unreachable_or_wrong_endpoint_is_unreadable(emulator, receiver_url):
    batch = new_batch(CONN_ID)
    for url in ("http://127.0.0.1:9/alta/batch-notices/b1", f"{receiver_url}/alta/nowhere"):
        with pytest.raises(BatchNoticesUnreadable) as unreadable:
            await read(BatchNoticeReader(url, CONN_ID, batch, WEBHOOK_SECRET))
        assert url in str(unreadable.value) and WEBHOOK_SECRET not in str(unreadable.value)


async def test_a_notice_committed_after_a_later_one_is_read_all_the_same(emulator):
    """On PostgreSQL a delivery may commit after one with a higher id: reads never skip the ids below the highest
    they saw (here: the middle row is out of the table while the first read runs, then arrives with its id)."""
    from airflow.utils.session import create_session
    from sqlalchemy import delete, insert, select

    from airflow_provider_alta._webhook.batch_contract import BatchGrant
    from airflow_provider_alta._webhook.batch_notice_store import BATCH_NOTICES, BatchNoticeStore
    from tests.plugins.receiver_support import run_body

    batch, store = new_batch(CONN_ID), BatchNoticeStore()
    for item in range(3):
        store.deliver(BatchGrant(CONN_ID, batch, item, int(time.time()) + 60), run_body(f"run-{item}"))
    with create_session() as session:
        middle = session.execute(
            select(BATCH_NOTICES).where(BATCH_NOTICES.c.item == 1, BATCH_NOTICES.c.batch_id == batch)
        ).one()
        session.execute(delete(BATCH_NOTICES).where(BATCH_NOTICES.c.id == middle.id))
    reader = BatchNoticeReader(batch_notices_url(), CONN_ID, batch, WEBHOOK_SECRET)
    assert [n.item for n in await read(reader)] == [0, 2]
    reader.acknowledge()
    with create_session() as session:
        session.execute(insert(BATCH_NOTICES).values(**middle._asdict()))
    assert [n.item for n in await read(reader)] == [1]
    reader.acknowledge()
    assert await read(reader) == [] and rows(batch) == []
