"""The asyncio driver of a batch: it reads the items, writes the journal and the results, sends what
:class:`~airflow_provider_alta._core.batch_plan.BatchPlan` says, and hands it every answer.

It runs inside the worker, in one event loop with one HTTP session: many runs in flight cost one worker slot.
Every invoke is preceded by its intent record, durable before the request leaves, and every answer naming a run
is recorded before anything else happens to its item; result rows go out in chunks. Nothing is flushed on the
way out of a crash: what was written is what a later try trusts.

With webhooks, a :class:`~airflow_provider_alta._batch.deliveries.Deliveries` reads what Alta delivered (through
the API server's receiver) every ``check_interval`` seconds; a delivery naming a run the batch started ends its item,
and one naming the run of an invoke a lost try never heard answered is recorded as that item's run first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_alta._batch.client import BatchClient
from airflow_provider_alta._batch.journal import CLEAR, INTENT, RUN, Journal, record
from airflow_provider_alta._batch.results import FAILED_KEYS_LISTED, ResultWriter, result_row
from airflow_provider_alta._batch.source import Item, Key
from airflow_provider_alta._batch.state import Resume
from airflow_provider_alta._core.batch_outcomes import ItemEnd, lost_invoke
from airflow_provider_alta._core.batch_plan import BatchPlan
from airflow_provider_alta._core.batch_progress import ItemStatus, ProgressLog
from airflow_provider_alta.exceptions import AltaError
from airflow_provider_alta.models import WorkflowRun

if TYPE_CHECKING:
    from airflow_provider_alta._batch.deliveries import Deliveries

#: Seconds after which buffered result rows are written even when their chunk is not full.
FLUSH_EVERY = 30.0
#: The index of a deliveries read among the answers (items' indexes are never negative).
READ = -1

Answer = tuple[str, int, Any]


@dataclass
class Figures:
    """What this try did, beside the plan's tally."""

    started_at: float
    failed_keys: list[Key] = field(default_factory=list)
    reattached: int = 0
    lost: int = 0
    #: Lost invokes whose run a webhook delivery named.
    found: int = 0
    #: The workflow's name, as the first run that ended tells it.
    workflow_name: str | None = None


class BatchDriver:
    """Run one batch's plan to its end (see the module's docstring)."""

    def __init__(
        self,
        *,
        plan: BatchPlan,
        client: BatchClient,
        items: Iterator[Item],
        resume: Resume,
        journal: Journal,
        results: ResultWriter,
        body: Callable[[int, dict[str, Any]], dict[str, Any]],
        progress: ProgressLog,
        log: Any,
        clock: Callable[[], float] = time.time,
        flush_every: float = FLUSH_EVERY,
        deliveries: Deliveries | None = None,
    ) -> None:
        self.plan, self.client, self.resume = plan, client, resume
        self.journal, self.results = journal, results
        self.body, self.progress, self.log, self.clock = body, progress, log, clock
        self.flush_every = flush_every
        self.deliveries = deliveries
        self.figures = Figures(started_at=clock(), failed_keys=list(resume.seen.failed_keys))
        self._items = items
        self._waiting: dict[int, Item] = {}  # read, not yet accepted by Alta
        self._sent: set[int] = set()  # invokes open
        self._runs: dict[int, tuple[Key, str]] = {}  # runs in flight
        self._lost: dict[int, Key] = {}  # a lost try's invokes, awaiting a delivery naming their run
        self._tasks: set[asyncio.Task[Answer]] = set()
        self._flushed_at = self.figures.started_at

    async def run(self) -> None:
        self._take_over(self.clock())
        if self.deliveries is not None:  # what arrived while no try ran ends those items before any query
            first = self._spawn(self._read_deliveries())
            await asyncio.wait({first})
            await self._handle({first})
        while True:
            self._read_items()
            now = self.clock()
            step = self.plan.step(now)
            self._tell_notices()
            for end in step.ended:
                self._row(end, self._lost.pop(end.index))
            if self.deliveries is not None and self.deliveries.due(now):
                self.deliveries.reading = True  # from now: the read's answer wakes the loop, not the clock
                self._spawn(self._read_deliveries())
            if step.invoke:
                await self._durably([record(INTENT, i, self._waiting[i].key) for i in step.invoke])
                for index in step.invoke:
                    self._sent.add(index)
                    self._spawn(self._invoke(index))
            for index, run_id in step.query:
                self._spawn(self._query(index, run_id))
            if self.progress.due(self.plan.tally.done, now):
                self.log.info("%s", self._progress_line(now))
            if self.plan.error is not None:
                await self._handle(set(self._tasks))  # the open requests' answers are kept before stopping
                break
            if step.done:
                break
            await self._handle(await self._next_answers(self._wake_at(step.wake_at)))
        await asyncio.to_thread(self.results.flush)
        self.journal.close()
        if self.deliveries is not None:
            await self.deliveries.close()  # the last deliveries read are forgotten by the receiver

    # -- reading -------------------------------------------------------------------------------------------
    def _take_over(self, now: float) -> None:
        """What earlier tries left: their runs are queried, their lost invokes end ``UNKNOWN`` (unless allowed)."""
        for index, entry in self.resume.reattach.items():
            assert entry.workflow_run_id is not None
            self._runs[index] = (entry.key, entry.workflow_run_id)
            self.plan.reattach(index, entry.workflow_run_id, now)
        self.figures.reattached = len(self.resume.reattach)
        if self.resume.retry_lost:
            return
        for index, entry in self.resume.lost.items():
            if self.deliveries is not None:
                self._lost[index] = entry.key
                self.plan.await_delivery(index, now)
            else:
                self._row(ItemEnd(index, ItemStatus.UNKNOWN, error=lost_invoke(None)), entry.key)
                self.plan.tally.add(ItemStatus.UNKNOWN)
        self.figures.lost = len(self.resume.lost)

    def _read_items(self) -> None:
        wanted = self.plan.wants()
        while wanted > 0:
            item = next(self._items, None)
            if item is None:
                self.plan.source_exhausted()
                return
            if self.resume.skip(item.index):
                continue
            self._waiting[item.index] = item
            self.plan.offer(item.index)
            wanted -= 1

    # -- sending -------------------------------------------------------------------------------------------
    def _spawn(self, request: Any) -> asyncio.Task[Answer]:
        task = asyncio.get_running_loop().create_task(request)
        self._tasks.add(task)
        return task

    async def _invoke(self, index: int) -> Answer:
        try:
            return "invoke", index, await self.client.invoke(self.body(index, self._waiting[index].input))
        except AltaError as exc:
            return "invoke", index, exc

    async def _read_deliveries(self) -> Answer:
        assert self.deliveries is not None
        return "deliveries", READ, await self.deliveries.read(self.clock())

    def _wake_at(self, wake_at: float | None) -> float | None:
        if self.deliveries is None or self.deliveries.reading:
            return wake_at
        return self.deliveries.next_read if wake_at is None else min(wake_at, self.deliveries.next_read)

    async def _query(self, index: int, workflow_run_id: str) -> Answer:
        try:
            return "query", index, await self.client.query(workflow_run_id)
        except AltaError as exc:
            return "query", index, exc

    async def _next_answers(self, wake_at: float | None) -> set[asyncio.Task[Answer]]:
        timeout = None if wake_at is None else max(0.0, wake_at - self.clock())
        if not self._tasks:
            if timeout is None:
                raise RuntimeError("the batch's plan has nothing in flight and nothing scheduled, yet is not done")
            await asyncio.sleep(timeout)
            return set()
        done, _ = await asyncio.wait(self._tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        return done

    # -- answers -------------------------------------------------------------------------------------------
    async def _handle(self, done: set[asyncio.Task[Answer]]) -> None:
        if not done:
            return
        if self.plan.error is not None:
            await asyncio.wait(done)
        records: list[dict[str, Any]] = []
        now = self.clock()
        for task in done:
            self._tasks.discard(task)
            kind, index, answer = task.result()
            if kind == "invoke":
                self._invoked(index, answer, now, records)
            elif kind == "query":
                self._queried(index, answer, now)
            else:
                self._delivered(answer, now, records)
        await self._durably(records)
        if self.deliveries is not None:
            self.deliveries.acknowledge()  # their runs are on record: the receiver may forget them
        await self._keep_up(now)

    def _invoked(self, index: int, answer: WorkflowRun | AltaError, now: float, records: list[dict[str, Any]]) -> None:
        self._sent.discard(index)
        item = self._waiting[index]
        if isinstance(answer, WorkflowRun):
            del self._waiting[index]
            records.append(record(RUN, index, item.key, answer.workflow_run_id))
            self._runs[index] = (item.key, answer.workflow_run_id)
            end = self.plan.invoke_answered(index, answer, now)
        else:
            end = self.plan.invoke_failed(index, answer, now)
            if end is None:
                records.append(record(CLEAR, index, item.key))  # not accepted: a lost try may invoke it again
            else:
                del self._waiting[index]
        if end is not None:
            self._runs.pop(index, None)
            self._row(end, item.key)

    def _queried(self, index: int, answer: WorkflowRun | AltaError, now: float) -> None:
        if isinstance(answer, WorkflowRun):
            end = self.plan.query_answered(index, answer, now)
        else:
            end = self.plan.query_failed(index, answer, now)
        if end is not None:
            key, _ = self._runs.pop(index)
            self._row(end, key)

    def _delivered(self, deliveries: list[Any], now: float, records: list[dict[str, Any]]) -> None:
        """Runs that Alta's deliveries say ended: their items end (a lost invoke's run is recorded first)."""
        for delivery in deliveries:
            index, run = delivery.item, delivery.run
            if index in self._lost and self.plan.awaits_delivery(index):
                key = self._lost.pop(index)
                records.append(record(RUN, index, key, run.workflow_run_id))
                self._runs[index] = (key, run.workflow_run_id)
                self.figures.found += 1
            end = self.plan.notice(index, run, now)  # None for a delivery naming another run than the item's
            if end is not None:
                key, _ = self._runs.pop(index)
                self._row(end, key)

    def _row(self, end: ItemEnd, key: Key) -> None:
        self.results.add(result_row(key, end.status, run=end.run, error=end.error, workflow_run_id=end.workflow_run_id))
        if self.figures.workflow_name is None and end.run is not None:
            self.figures.workflow_name = end.run.workflow_name
        if end.status is not ItemStatus.SUCCEED and len(self.figures.failed_keys) < FAILED_KEYS_LISTED:
            self.figures.failed_keys.append(key)

    # -- writing -------------------------------------------------------------------------------------------
    async def _durably(self, records: list[dict[str, Any]]) -> None:
        if records:
            await asyncio.to_thread(self.journal.append, records)

    async def _keep_up(self, now: float) -> None:
        """Write the rows when their time has come, and fold the journal when it has grown."""
        if self.results.pending and now - self._flushed_at >= self.flush_every:
            await asyncio.to_thread(self.results.flush)
            self._flushed_at = now
        if self.journal.due_for_compaction():
            await asyncio.to_thread(self.results.flush)  # every item that ended is in a chunk: its records may go
            self._flushed_at = now
            still_open = [record(RUN, i, key, run_id) for i, (key, run_id) in self._runs.items()]
            still_open += [record(INTENT, i, self._waiting[i].key) for i in self._sent]
            await asyncio.to_thread(self.journal.compact, still_open)

    def _tell_notices(self) -> None:
        for notice in self.plan.notices:
            self.log.log(notice.level, "%s", notice.message)
        self.plan.notices.clear()

    def _progress_line(self, now: float) -> str:
        return self.progress.line(
            self.plan.tally, in_flight=self.plan.in_flight, limit=self.plan.concurrency.limit, now=now
        )
