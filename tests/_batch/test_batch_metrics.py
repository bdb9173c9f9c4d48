"""A batch's metrics count every run once across tries, a try killed before it could send its own included."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_alta._batch.client import HookClient
from airflow_provider_alta._batch.location import resolve
from airflow_provider_alta._batch.runner import BatchRunner
from airflow_provider_alta._batch.source import ItemSource
from airflow_provider_alta._batch.spend import emit_batch_metrics
from airflow_provider_alta._core.batch_plan import BatchSettings
from airflow_provider_alta.hooks.alta import AltaAsyncHook
from tests._batch.test_batch_driver import FAST, topics
from tests.test_observability import by_name, statsd  # noqa: F401  (the StatsD fixture)

pytestmark = pytest.mark.usefixtures("airflow_db", "alta_conn")


def runner_over(output: str, items: list[dict]) -> BatchRunner:
    runner = BatchRunner(
        source=ItemSource(items=items),
        output=resolve(output, "output_path"),
        settings=BatchSettings(polling=FAST, max_active_runs=4),
        max_failed_items=None,
        rerun_failed=False,
        body=lambda index, item: {"input": item, "isAsync": True},
        log=logging.getLogger("alta.batch.test"),
    )
    runner.prepare()
    return runner


async def a_try(runner: BatchRunner):
    async with AltaAsyncHook() as hook:
        return await runner.run(HookClient(hook), budget=hook.budget, outage=None)


def send(report) -> None:
    emit_batch_metrics(report, dag_id="d", task_id="t", conn_id="alta_default")


async def test_a_try_killed_before_its_metrics_leaves_them_to_the_next(alta_emulator, tmp_path, statsd):  # noqa: F811
    alta_emulator.configure(duration=0.1)
    output = str(tmp_path / "out")
    killed = runner_over(output, topics(5))
    await a_try(killed)  # every run ended and its row was written; then the worker died: no manifest, no metrics
    assert by_name(statsd.alta()) == {}

    retry = runner_over(output, topics(5))
    assert retry.nothing_to_do
    report = retry.report()
    retry.finish(report)
    send(report)
    metrics = by_name(statsd.alta())
    assert metrics["airflow.alta.run.status.succeed"] == [({}, 5.0, "c")]
    assert metrics["airflow.alta.run.cost"][0][1] == pytest.approx(report.tally.cost) and report.tally.cost > 0

    cleared = runner_over(output, topics(5))  # a clear of the finished task: nothing more to send
    report = cleared.report()
    cleared.finish(report)
    send(report)
    assert by_name(statsd.alta()) == {}
