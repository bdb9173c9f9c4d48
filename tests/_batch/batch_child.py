"""A batch in a process of its own, for tests that kill it (``kill -9``) and resume: ``python batch_child.py
OUTPUT ITEMS MAX_ACTIVE_RUNS``, the connection in ``AIRFLOW_CONN_ALTA_DEFAULT``."""

from __future__ import annotations

import asyncio
import logging
import sys

from airflow_provider_alta._batch.client import HookClient
from airflow_provider_alta._batch.location import resolve
from airflow_provider_alta._batch.runner import BatchRunner
from airflow_provider_alta._batch.source import ItemSource
from airflow_provider_alta._core.batch_plan import BatchSettings
from airflow_provider_alta._core.polling import PollingSettings
from airflow_provider_alta.hooks.alta import AltaAsyncHook


def runner(output: str, items: int, max_active_runs: int) -> BatchRunner:
    return BatchRunner(
        source=ItemSource(items=[{"id": f"k{n}", "topic": f"T{n}"} for n in range(items)], key_field="id"),
        output=resolve(output, "output_path"),
        settings=BatchSettings(max_active_runs=max_active_runs, polling=PollingSettings(min_interval=0.05)),
        max_failed_items=None,
        rerun_failed=False,
        body=lambda index, item: {"input": item, "isAsync": True},
        log=logging.getLogger("alta.batch.child"),
        chunk_rows=50,
    )


async def run(batch: BatchRunner) -> None:
    batch.prepare()
    async with AltaAsyncHook() as hook:
        report = await batch.run(HookClient(hook), budget=hook.budget, outage=None)
    batch.finish(report)


if __name__ == "__main__":
    asyncio.run(run(runner(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
