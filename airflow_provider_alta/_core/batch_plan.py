"""Many runs of one workflow, as one sans-I/O state machine: what a batch sends next, and when.

:class:`BatchPlan` is to a batch what :class:`~airflow_provider_alta._core.waiting.RunWaiter` is to one run: the
driver (``_batch/driver.py``) tells it what happened (an item read, an invoke answered or refused, a query
answered or failed) and asks :meth:`BatchPlan.step` what to do now: which items to invoke, which runs to query
(one schedule for the whole batch, not one loop per item), and when to ask again. It never sends, sleeps or
writes; the clock is an argument, so every rule is tested with a fake one.

The rules, each in one place:

* at most :class:`~airflow_provider_alta._core.batch_concurrency.AdaptiveConcurrency`'s limit of runs in
  flight, never above ``max_active_runs``; a 429 whose code names the concurrency limit lowers it, a quiet
  period raises it again;
* every request takes its turn from the key's shared :class:`RateBudget` (``X-RateLimit-*``, ``Retry-After``);
  a window spent for longer than ``quota_wait_limit`` stops the batch, resumably, instead of holding a worker;
* an invoke is sent again only when it provably started nothing (``_core/request_retry.py``); one whose outcome is
  unknown ends its item ``UNKNOWN``, unless ``retry_on_unknown_outcome``;
* a run's first query goes out when the batch's runs so far suggest it has ended (a high quantile of their
  durations after its invoke was answered), a second at a later quantile by which nearly all of them had ended,
  later ones on the adaptive schedule of ``_core/polling.py``;
* with webhooks, a delivery naming a run (:meth:`BatchPlan.notice`) ends its item (``confirm_webhooks``: after a
  query); queries, ``webhook_fallback`` apart, only catch a lost delivery, which a lost try's invoke awaits as long;
* ``max_cost`` / ``max_tokens``: a run starts only while what was spent plus the expected cost of the runs in
  flight (the batch's average per run) stays within them; until one run has said what a run costs, one runs at
  a time. ``max_failed_items``: more failures stop the batch. Runs in flight always finish.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass

from airflow_provider_alta._core.batch_concurrency import MIN_QUIET_PERIOD, QUIET_PERIOD, AdaptiveConcurrency
from airflow_provider_alta._core.batch_limits import BatchSettings, limit_reached, runs_within_limits
from airflow_provider_alta._core.batch_outcomes import (
    InvokeFailure,
    ItemEnd,
    QueryFailure,
    StopReason,
    describe,
    invoke_failure,
    lost_invoke,
    query_failure,
    unknown_invoke,
    unknown_run,
)
from airflow_provider_alta._core.batch_progress import ItemStatus, Tally
from airflow_provider_alta._core.batch_schedule import DueQueue, DurationEstimate, next_query_at
from airflow_provider_alta._core.ratelimit import RateBudget
from airflow_provider_alta._core.request_retry import backoff_delay, is_transient
from airflow_provider_alta._core.waiting import Notice, OutageReport
from airflow_provider_alta.exceptions import AltaError, AltaRateLimitError
from airflow_provider_alta.models import RunStatus, WorkflowRun

#: Queries answered 404 that a run this try started may get before it counts as unknown: an API may answer for a
#: new run only a moment after its invoke.
NOT_FOUND_GRACE = 2

__all__ = ["BatchPlan", "BatchSettings", "ItemEnd", "Step", "StopReason"]


@dataclass(frozen=True)
class Step:
    """What to do now: invoke these items (their intent records first), query these runs, ask again at
    ``wake_at`` (``None``: only an answer can change anything); ``ended``: items that ended without an answer
    (a lost invoke whose delivery never came); ``done``: the batch is over."""

    invoke: tuple[int, ...] = ()
    query: tuple[tuple[int, str], ...] = ()
    ended: tuple[ItemEnd, ...] = ()
    wake_at: float | None = None
    done: bool = False


@dataclass
class _Slot:
    """One item in flight: its invoke is open, or its run is known and waits for its next query."""

    index: int
    sent_at: float
    run_id: str | None = None
    accepted_at: float = 0.0
    busy: bool = True  # a request about it is open
    due: float = math.inf
    polls: int = 0
    failures: int = 0
    not_found: int = 0
    reattached: bool = False
    #: An invoke a lost try sent without an answer: its run is known only if a delivery names it.
    lost: bool = False
    #: A delivery that came before the invoke's answer named its run.
    early: WorkflowRun | None = None


class BatchPlan:
    """The state machine of one batch (see the module's docstring)."""

    def __init__(
        self,
        settings: BatchSettings,
        *,
        budget: RateBudget | None = None,
        tally: Tally | None = None,
        outage: OutageReport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.budget = budget
        self.tally = tally or Tally()
        self.outage = outage
        self.rng = rng or random.Random()
        quiet = settings.quiet_period if settings.quiet_period is not None else QUIET_PERIOD
        self.concurrency = AdaptiveConcurrency(settings.max_active_runs, quiet_period=quiet)
        self.durations = DurationEstimate(settings.first_query_quantile, late_quantile=settings.late_query_quantile)
        #: Lines for the driver's log (failure streaks), drained by the driver.
        self.notices: list[Notice] = []
        #: Why no more runs start, when the batch stopped early.
        self.stop_reason: StopReason | None = None
        #: Why the batch ends at once (a rejected key, an outage, a spent quota); in-flight runs stay on record.
        self.error: AltaError | None = None
        self._queue: deque[int] = deque()
        self._slots: dict[int, _Slot] = {}
        self._due = DueQueue()
        self._invoking = 0
        self._source_done = False
        self._hold_until = 0.0
        self._streak_began: float | None = None
        self._streak = 0
        self._crowded = 0  # concurrency or quota 429s in a row, without an invoke accepted between
        self._retries: dict[int, int] = {}

    # -- what the driver asks ------------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return len(self._slots)

    def wants(self) -> int:
        """How many more items to read and :meth:`offer` now (a queue one limit deep keeps refills immediate)."""
        if self.stop_reason is not None or self.error is not None or self._source_done:
            return 0
        return max(0, self.concurrency.limit - len(self._queue))

    def step(self, now: float) -> Step:
        """What to send now, and when to ask again."""
        if self.error is not None:
            return Step(done=True)
        self.concurrency.tick(len(self._slots), now)
        wake: list[float] = []
        ended: list[ItemEnd] = []
        queries = self._due_queries(now, wake, ended)
        invokes = self._starts(now, wake)
        if self.error is not None:
            return Step(done=True)
        over = self.stop_reason is not None or (self._source_done and not self._queue)
        if (first := self._due.peek()) is not None:
            wake.append(first[0])
        wake_at = min(wake) if wake else None
        return Step(tuple(invokes), tuple(queries), tuple(ended), wake_at, over and not self._slots)

    # -- what the driver tells -----------------------------------------------------------------------------
    def offer(self, index: int) -> None:
        """An item to invoke (read from the input, not done by an earlier try)."""
        self._queue.append(index)

    def source_exhausted(self) -> None:
        self._source_done = True

    def reattach(self, index: int, workflow_run_id: str, now: float) -> None:
        """A run an earlier try started and recorded: query it now, never invoke its item again."""
        slot = _Slot(index, sent_at=now, run_id=workflow_run_id, accepted_at=now, busy=False, reattached=True)
        self._slots[index] = slot
        self._register(slot)
        self._at(slot, now)

    def await_delivery(self, index: int, now: float) -> None:
        """An invoke a lost try sent without an answer: with webhooks, a delivery naming its run may still come
        (:meth:`notice`); after ``webhook_fallback`` seconds without one, the item ends ``UNKNOWN``."""
        slot = _Slot(index, sent_at=now, busy=False, lost=True)
        self._slots[index] = slot
        self._at(slot, now + self.settings.webhook_fallback)

    def awaits_delivery(self, index: int) -> bool:
        """Whether ``index`` is a lost invoke whose run only a delivery can name."""
        slot = self._slots.get(index)
        return slot is not None and slot.lost and slot.run_id is None

    def notice(self, index: int, run: WorkflowRun, now: float) -> ItemEnd | None:
        """A webhook delivery for ``index`` named ``run``: the item ends (or, with ``confirm_webhooks``, its run
        is queried now). A delivery for an item not in flight, or naming another run, changes nothing."""
        slot = self._slots.get(index)
        if slot is None or not run.is_terminal:
            return None
        if slot.run_id is None:
            if not slot.lost:
                slot.early = run  # the invoke is open: its answer will name the run
                return None
            slot.run_id, slot.accepted_at = run.workflow_run_id, now  # a lost invoke's run, named at last
            self._register(slot)
        if slot.run_id != run.workflow_run_id or slot.busy:
            return None  # another run (never this item's), or a query about it is open and will answer
        return self._delivered(slot, run, now)

    def invoke_answered(self, index: int, run: WorkflowRun, now: float) -> ItemEnd | None:
        slot = self._open(index)
        self._invoking -= 1
        self._answered(now)
        self._crowded = 0
        if run.is_terminal:
            return self._finish(slot, run)
        slot.run_id, slot.accepted_at = run.workflow_run_id, now
        self._register(slot)
        if slot.early is not None and slot.early.workflow_run_id == run.workflow_run_id:
            return self._delivered(slot, slot.early, now)
        self._schedule(slot, now, first=True)
        return None

    def invoke_failed(self, index: int, exc: AltaError, now: float) -> ItemEnd | None:
        """An invoke without a run: sent again when it provably started nothing, else the item ends."""
        self._open(index)
        self._invoking -= 1
        del self._slots[index]
        kind = invoke_failure(exc)
        if kind is InvokeFailure.CONCURRENCY or isinstance(exc, AltaRateLimitError):
            # Not an outage, and no fault of the item's: it waits for a free slot, or the key's budget holds all.
            self._answered(now)
            self._crowded += 1
            if kind is InvokeFailure.CONCURRENCY:
                self.concurrency.rejected(now)  # new starts then wait for one of the batch's runs to end
            else:
                self._hold(exc, now, self._crowded)
            self._queue.appendleft(index)
            return None
        if kind is InvokeFailure.RESEND:
            self._transient(exc, now)
            self._hold(exc, now, self._streak)
            return self._again(index, exc, ItemStatus.REFUSED, "was not accepted")
        if kind is InvokeFailure.UNKNOWN:
            if is_transient(exc):
                self._transient(exc, now)
            if self.settings.retry_on_unknown_outcome:
                return self._again(index, exc, ItemStatus.UNKNOWN, "had no answer")
            return self._end(index, ItemStatus.UNKNOWN, unknown_invoke(exc), exc.workflow_run_id)
        if kind is InvokeFailure.FATAL:
            self.error = exc
            return None
        self._answered(now)
        return self._end(index, ItemStatus.REFUSED, describe(exc))

    def query_answered(self, index: int, run: WorkflowRun, now: float) -> ItemEnd | None:
        slot = self._open(index)
        self._answered(now)
        slot.failures = slot.not_found = 0
        if run.is_terminal:
            return self._finish(slot, run)
        self._schedule(slot, now, first=False)
        return None

    def query_failed(self, index: int, exc: AltaError, now: float) -> ItemEnd | None:
        slot = self._open(index)
        kind = query_failure(exc)
        if kind is QueryFailure.NOT_FOUND:
            self._answered(now)
            slot.not_found += 1
            if not slot.reattached and slot.not_found <= NOT_FOUND_GRACE:
                pause = backoff_delay(slot.not_found, self.settings.retry, self.rng)
                self._at(slot, now + max(self.settings.polling.min_interval, pause))
                return None
            return self._finish_unknown(slot, unknown_run(slot.run_id, exc))
        if kind is QueryFailure.TRANSIENT:
            self._transient(exc, now)
            slot.failures += 1
            pause = max(backoff_delay(slot.failures, self.settings.retry, self.rng), exc.retry_after or 0.0)
            self._at(slot, now + max(pause, self.settings.polling.min_interval))
            return None
        if kind is QueryFailure.FATAL:
            self.error = exc
            return None
        self._answered(now)
        return self._finish_unknown(slot, describe(exc))

    # -- sending ---------------------------------------------------------------------------------------------
    def _due_queries(self, now: float, wake: list[float], ended: list[ItemEnd]) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        while (first := self._due.peek()) is not None and first[0] <= now:
            due, index = first
            slot = self._slots.get(index)
            if slot is None or slot.busy or slot.due != due:
                self._due.pop()  # outdated: the item ended, or was rescheduled
                continue
            if slot.run_id is None:  # a lost invoke whose delivery never came
                self._due.pop()
                del self._slots[index]
                ended.append(self._end(index, ItemStatus.UNKNOWN, lost_invoke(self.settings.webhook_fallback)))
                continue
            if not self._take_turn(now, wake, for_poll=True):
                break
            self._due.pop()
            slot.busy = True
            slot.polls += 1
            assert slot.run_id is not None
            out.append((index, slot.run_id))
        return out

    def _starts(self, now: float, wake: list[float]) -> list[int]:
        if self.stop_reason is not None or not self._queue:
            return []
        if self.concurrency.cut_pending_since is not None:
            if self._invoking:
                return []  # the answers to the invokes already sent measure the limit
            self.concurrency.settle(len(self._slots), now)
            if not self._slots:  # others fill the key: no run of the batch's will free a slot, so back off
                self._hold_until = now + backoff_delay(self._crowded, self.settings.retry, self.rng)
        if now < self._hold_until:
            wake.append(self._hold_until)
            return []
        capacity, bound = runs_within_limits(self.settings, self.tally, self.concurrency.limit)
        started: list[int] = []
        while self._queue and len(self._slots) < capacity and self._take_turn(now, wake, for_poll=False):
            index = self._queue.popleft()
            self._slots[index] = _Slot(index, sent_at=now)
            self._invoking += 1
            started.append(index)
        if self._queue and not self._slots and capacity < 1:
            self._stop(bound or StopReason.MAX_COST)  # not even one more run fits in what is left
        if len(self._slots) >= self.concurrency.limit and (raise_at := self.concurrency.next_raise_at()):
            wake.append(raise_at)
        return started

    def _take_turn(self, now: float, wake: list[float], *, for_poll: bool) -> bool:
        """Whether the key's budget lets one more request go now (and counts it)."""
        if self.budget is None:
            return True
        wait = self.budget.acquire(now, for_poll=for_poll)
        if wait <= 0:
            return True
        if wait > self.settings.quota_wait_limit:
            self.error = AltaRateLimitError(
                f"The API key's request quota is spent for another {wait:.0f} s, longer than the batch waits "
                f"({self.settings.quota_wait_limit:.0f} s); stopping here: a retry or a clear of the task resumes "
                "the batch where it stopped, without paying again for any item",
                retry_after=wait,
            )
            return False
        wake.append(now + wait)
        return False

    # -- bookkeeping -----------------------------------------------------------------------------------------
    def _open(self, index: int) -> _Slot:
        slot = self._slots[index]
        slot.busy = False
        return slot

    def _register(self, slot: _Slot) -> None:
        """A known run polls: the key's budget spaces everyone's polls by the number of pollers."""
        if self.budget is not None:
            self.budget.register_poller()

    def _at(self, slot: _Slot, due: float) -> None:
        slot.due = due
        self._due.push(slot.index, due)

    def _schedule(self, slot: _Slot, now: float, *, first: bool) -> None:
        if self.settings.webhooks:
            self._at(slot, now + self.settings.webhook_fallback)  # only a lost delivery needs a query
            return
        due = next_query_at(
            now=now,
            sent_at=slot.sent_at,
            accepted_at=slot.accepted_at,
            first=first,
            expected=self.durations.expected(),
            polling=self.settings.polling,
            rng=self.rng,
            latest=self.durations.latest(),
        )
        if self.budget is not None:
            due = max(due, now + self.budget.poll_spacing(now))
        self._at(slot, due)

    def _answered(self, now: float) -> None:
        self._streak, self._streak_began = 0, None
        if self.outage is not None and (notice := self.outage.answered(now)) is not None:
            self.notices.append(notice)

    def _transient(self, exc: AltaError, now: float) -> None:
        """One more failure in a row: an outage longer than the retry bound stops the batch (resumably)."""
        self._streak += 1
        if self._streak_began is None:
            self._streak_began = now
        if now - self._streak_began > self.settings.retry.max_wait:
            self.error = exc  # retryable: a retry of the task reattaches to every run in flight
        pause = backoff_delay(self._streak, self.settings.retry, self.rng)
        if self.outage is not None and (notice := self.outage.failed(exc, pause, now)) is not None:
            self.notices.append(notice)

    def _hold(self, exc: AltaError, now: float, attempt: int) -> None:
        """No new invoke before a refused one's backoff (or ``Retry-After``) has passed."""
        pause = max(backoff_delay(max(1, attempt), self.settings.retry, self.rng), exc.retry_after or 0.0)
        self._hold_until = max(self._hold_until, now + pause)

    def _again(self, index: int, exc: AltaError, status: ItemStatus, what: str) -> ItemEnd | None:
        """Invoke the item again, within the connection's retry bound; past it, the item ends ``status``."""
        self._retries[index] = attempts = self._retries.get(index, 0) + 1
        if attempts >= self.settings.retry.max_attempts:
            return self._end(index, status, f"the invoke {what} after {attempts} attempts; last: {describe(exc)}")
        self._queue.appendleft(index)
        return None

    def _delivered(self, slot: _Slot, run: WorkflowRun, now: float) -> ItemEnd | None:
        if self.settings.confirm_webhooks:
            self._at(slot, now)  # the query's answer ends the item
            return None
        return self._finish(slot, run)

    def _finish(self, slot: _Slot, run: WorkflowRun) -> ItemEnd:
        self._forget(slot)
        self.durations.observe(run)
        if self.settings.quiet_period is None and (expected := self.durations.expected()) is not None:
            self.concurrency.quiet_period = max(MIN_QUIET_PERIOD, 2 * expected)
        succeeded = run.status is RunStatus.SUCCEED
        status = ItemStatus.SUCCEED if succeeded else ItemStatus.FAILED
        error = None if succeeded else (run.error_detail or "the workflow run ended FAILED")
        self.tally.add(status, run.total_cost, run.total_tokens)
        self._check_limits()
        return ItemEnd(slot.index, status, run=run, error=error, workflow_run_id=run.workflow_run_id)

    def _finish_unknown(self, slot: _Slot, error: str) -> ItemEnd:
        self._forget(slot)
        return self._end(slot.index, ItemStatus.UNKNOWN, error, slot.run_id)

    def _forget(self, slot: _Slot) -> None:
        del self._slots[slot.index]
        if slot.run_id is not None and self.budget is not None:
            self.budget.unregister_poller()

    def _end(self, index: int, status: ItemStatus, error: str, run_id: str | None = None) -> ItemEnd:
        self._retries.pop(index, None)
        self.tally.add(status)
        self._check_limits()
        return ItemEnd(index, status, error=error, workflow_run_id=run_id)

    def _check_limits(self) -> None:
        if (reason := limit_reached(self.settings, self.tally)) is not None:
            self._stop(reason)

    def _stop(self, reason: StopReason) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
