"""One wait for one run, as a sans-I/O state machine that the sync hook and the async hook both drive.

:class:`RunWaiter` makes every decision of a wait (when to send the next query,
how long to hold it for the key's shared :class:`~airflow_provider_alta._core.ratelimit.RateBudget`,
which failures to wait out, what to log about a failure streak) and hands its
driver one :class:`Step` at a time; the drivers only send and sleep. The
schedule it follows is :mod:`airflow_provider_alta._core.polling`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from airflow_provider_alta._core.polling import PollingSettings, adaptive_interval
from airflow_provider_alta._core.ratelimit import RateBudget
from airflow_provider_alta._core.request_retry import RetrySettings, backoff_delay, is_transient
from airflow_provider_alta._core.validation import ensure_positive_number
from airflow_provider_alta.exceptions import AltaError, AltaRateLimitError, AltaTimeoutError

#: Seconds between two warnings of one failure streak: its first failure is told at once, later ones at most this
#: often, so an outage of an hour costs a few lines per hour per wait, not one per attempt.
OUTAGE_WARNING_INTERVAL = 30.0


class PollSchedule:
    """The state of one wait: when to query next, and when to give up.

    The hook's ``wait_for_run`` and the trigger drive the same schedule; only
    their sleeping and sending differ.
    """

    def __init__(
        self,
        settings: PollingSettings,
        *,
        started_at: float,
        budget: RateBudget | None = None,
        retry: RetrySettings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.started_at = started_at
        self.budget = budget
        self.retry = retry or RetrySettings()
        self.rng = rng or random.Random()
        self.failures = 0

    def delay_after_status(self, now: float) -> float:
        """The wait after an answer that says the run is still going."""
        self.failures = 0
        elapsed = now - self.started_at
        expected = self.settings.expected_duration
        if expected is not None and elapsed < expected:
            interval = max(self.settings.min_interval, expected - elapsed)
        else:
            interval = adaptive_interval(elapsed, self.settings, self.rng)
        if self.budget is not None:
            interval = max(interval, self.budget.poll_spacing(now))
        return interval

    def delay_after_failure(self, exc: AltaError, now: float) -> float:
        """The wait after a failed query; re-raises when it is not worth waiting out."""
        if not is_transient(exc):
            raise exc
        self.failures += 1
        if self.failures >= self.settings.max_consecutive_failures:
            raise exc
        if isinstance(exc, AltaRateLimitError) and self.budget is not None:
            self.budget.block(exc.retry_after if exc.retry_after is not None else 0.0, now)
        wait = backoff_delay(self.failures, self.retry, self.rng)
        if exc.retry_after is not None:
            wait = max(wait, exc.retry_after)
        return max(wait, self.settings.min_interval)

    def wait_before_send(self, now: float) -> float:
        """Seconds to hold the next query for the shared budget (0 = send now; counts it)."""
        return self.budget.acquire(now, for_poll=True) if self.budget is not None else 0.0


@dataclass(frozen=True)
class Notice:
    """A line for the waiting side's log, decided here and written by the driver (the trigger or the hook)."""

    level: int  # a ``logging`` level
    message: str


NoticeCallback = Callable[[Notice], None]


@dataclass(frozen=True)
class Step:
    """What a wait's driver does next: send the query (``send``), return the ended ``run``, or sleep ``pause``."""

    send: bool = False
    pause: float = 0.0
    run: Any = None  # the ended WorkflowRun: the wait is over


#: The step that sends the query now.
SEND = Step(send=True)


class OutageReport:
    """What to say while queries fail in a row, and when Alta answers again (pure: the caller passes the clock).

    A wait rides transient failures out in silence otherwise: the log shows the last status and, minutes later,
    the timeout, with nothing between to tell an outage from a slow run. The first failure of a streak is told at
    once (the URL, the error's class, the next attempt); later failures of the same streak at most every
    ``interval`` seconds; the first answer after a streak says how long it lasted. Only the URL and the error's
    own text are told: errors never carry the key or request headers.
    """

    def __init__(self, url: str, *, interval: float = OUTAGE_WARNING_INTERVAL) -> None:
        self.url = url
        self.interval = interval
        self.failures = 0
        self.began_at: float | None = None
        self.warned_at: float | None = None

    def failed(self, exc: AltaError, pause: float, now: float) -> Notice | None:
        """A warning for this failure when one is due; ``pause`` is the wait before the next attempt."""
        self.failures += 1
        if self.began_at is None:
            self.began_at = now
        if self.warned_at is not None and now - self.warned_at < self.interval:
            return None
        self.warned_at = now
        if self.failures == 1:
            what = f"Alta query to {self.url} failed"
        else:
            what = (
                f"Alta query to {self.url} still failing: {self.failures} failures in a row "
                f"over {now - self.began_at:.0f} s, the latest"
            )
        return Notice(
            logging.WARNING,
            f"{what} with {type(exc).__name__}: {exc}; waiting it out, next attempt in {pause:.1f} s "
            f"(at {_clock(now + pause)})",
        )

    def answered(self, now: float) -> Notice | None:
        """The recovery line when this answer ends a streak; ``None`` otherwise."""
        if not self.failures:
            return None
        failures, began_at = self.failures, self.began_at if self.began_at is not None else now
        self.failures, self.began_at, self.warned_at = 0, None, None
        plural = "query" if failures == 1 else "queries"
        return Notice(
            logging.INFO,
            f"Alta at {self.url} answers again, after {failures} failed {plural} over {now - began_at:.0f} s",
        )


def _clock(unix_time: float) -> str:
    return datetime.fromtimestamp(unix_time, timezone.utc).strftime("%H:%M:%S UTC")


class RunWaiter:
    """One wait for one run, as a sans-I/O state machine.

    Its driver (the sync hook's ``wait_for_run`` sleeps with ``time``, the async
    hook's with ``asyncio``) asks :meth:`begin` for the first :class:`Step`, does
    what it says, and reports back: :meth:`received` after a send (the answer or
    the :class:`~airflow_provider_alta.exceptions.AltaError`), :meth:`awake` after
    a pause, until a step carries the ended run. This class makes every decision,
    including what to log about a failure streak (``outage``, told through
    ``on_notice``); a fatal error or the deadline is raised from these calls.
    """

    def __init__(
        self,
        workflow_run_id: str,
        schedule: PollSchedule,
        *,
        deadline: float | None,
        on_status: Any = None,
        outage: OutageReport | None = None,
        on_notice: NoticeCallback | None = None,
    ) -> None:
        self.workflow_run_id = workflow_run_id
        self.schedule = schedule
        self.deadline = deadline
        self.on_status = on_status
        self.outage = outage
        self.on_notice = on_notice
        self.last: Any = None  # the latest WorkflowRun seen

    @classmethod
    def for_query(
        cls,
        workflow_run_id: str,
        *,
        url: str,
        now: float,
        budget: RateBudget | None = None,
        retry: RetrySettings | None = None,
        timeout: float | None = None,
        polling: PollingSettings | None = None,
        started_at: float | None = None,
        deadline: float | None = None,
        on_status: Any = None,
        on_notice: NoticeCallback | None = None,
    ) -> RunWaiter:
        """A wait as a hook's ``wait_for_run`` is asked for: ``timeout`` (seconds from ``now``) or ``deadline`` (Unix
        time) bound it, ``started_at`` (default ``now``) dates the run for the schedule, ``url`` is what a failure
        streak names."""
        ensure_positive_number(timeout, "timeout", allow_none=True)
        if deadline is None and timeout is not None:
            deadline = now + timeout
        started = started_at if started_at is not None else now
        schedule = PollSchedule(polling or PollingSettings(), started_at=started, budget=budget, retry=retry)
        outage = OutageReport(url)
        return cls(
            workflow_run_id, schedule, deadline=deadline, on_status=on_status, outage=outage, on_notice=on_notice
        )

    def __enter__(self) -> RunWaiter:
        """Count this wait among the key's pollers while it lasts: the budget spaces every poller's queries."""
        if self.schedule.budget is not None:
            self.schedule.budget.register_poller()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.schedule.budget is not None:
            self.schedule.budget.unregister_poller()

    def _tell(self, notice: Notice | None) -> None:
        if notice is not None and self.on_notice is not None:
            self.on_notice(notice)

    def _clamp(self, delay: float, now: float) -> float:
        if self.deadline is None:
            return delay
        if now >= self.deadline:
            raise self.timeout_error()
        return min(delay, self.deadline - now)

    def begin(self, initial: Any, now: float) -> Step:
        """The first step; ``initial`` is a state already known (e.g. the invoke's answer), or ``None``.

        With a known state the first query waits a full interval instead of going out at once.
        """
        if initial is None:
            return self.awake(now)
        return self.received(initial, now)

    def awake(self, now: float) -> Step:
        """The step after a pause: send now, or hold the query longer for the key's budget."""
        wait = self.before_send(now)
        return SEND if wait <= 0 else Step(pause=wait)

    def received(self, outcome: Any, now: float) -> Step:
        """The step after a send: the ended run, or the pause before the next query; a fatal error is raised."""
        if isinstance(outcome, AltaError):
            return Step(pause=self.after_error(outcome, now))
        pause = self.after_answer(outcome, now)
        return Step(run=outcome) if pause is None else Step(pause=pause)

    def before_send(self, now: float) -> float:
        """0 to send the next query now, else the seconds to wait first."""
        wait = self.schedule.wait_before_send(now)
        return self._clamp(wait, now) if wait > 0 else 0.0

    def after_answer(self, run: Any, now: float) -> float | None:
        """``None`` when the run has ended, else the pause before the next query."""
        if self.outage is not None:
            self._tell(self.outage.answered(now))
        if self.on_status is not None and (self.last is None or self.last.status != run.status):
            self.on_status(run, now - self.schedule.started_at)
        self.last = run
        if run.is_terminal:
            return None
        return self._clamp(self.schedule.delay_after_status(now), now)

    def after_error(self, exc: AltaError, now: float) -> float:
        """The pause after a transient failure; re-raises a fatal one."""
        pause = self._clamp(self.schedule.delay_after_failure(exc, now), now)
        if self.outage is not None:
            self._tell(self.outage.failed(exc, pause, now))
        return pause

    def timeout_error(self) -> AltaError:
        status = self.last.status.value if self.last is not None else "unknown"
        return AltaTimeoutError(
            f"Gave up waiting for the workflow run (last status {status}); it may still be running "
            "in Alta, which has no cancel endpoint, and may still consume credits",
            workflow_run_id=self.workflow_run_id,
        )
