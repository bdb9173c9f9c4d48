"""What the emulator remembers between requests, and the counters ``GET /_emulator/stats`` reports.

Memory stays bounded per run: a run keeps its few fields and its input; the request log, the webhook deliveries
and the sink keep their last ``log_size`` entries (the counters count everything).
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_alta.testing.limits import InFlight, RateWindows
from airflow_provider_alta.testing.model import INVOKE, QUERY, Fault, Run, key_id
from airflow_provider_alta.testing.workflows import DEFAULT_API_KEY, WorkflowConfig

#: Entries each log keeps (the request log, the webhook deliveries, the sink), the latest last.
LOG_SIZE = 100_000
#: Inputs that started more than one run, listed in the stats (the first ones, as sent).
DUPLICATES_LISTED = 100


@dataclass(slots=True)
class KeyCounters:
    """One key's counters: what a batch test asks of the emulator (paid runs, refusals, peak concurrency)."""

    label: str
    #: Invoke requests past the rate and concurrency limits: runs started plus inputs refused.
    invokes: int = 0
    #: Runs started: the paid runs.
    runs: int = 0
    #: Invokes answered 400/422 for their input (the Start node's schema, a ``refuse`` directive, a bad body).
    refused_inputs: int = 0
    #: Invokes answered 429 ``CONCURRENCY_LIMIT_EXCEEDED``: no run started.
    concurrency_refused: int = 0
    #: Query requests past the rate limit.
    queries: int = 0
    #: Requests (invokes and queries) answered 429 ``RATE_LIMITED``.
    rate_limited: int = 0
    peak_in_flight: int = 0
    #: Runs started per input, by a digest of the input's JSON: more than one is a duplicate paid run.
    runs_per_input: dict[bytes, int] = field(default_factory=dict, repr=False)
    duplicate_runs: int = 0
    duplicates: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def started(self, run_input: dict[str, Any], in_flight: int) -> None:
        """Count a started run with the key's runs in flight now."""
        self.runs += 1
        self.peak_in_flight = max(self.peak_in_flight, in_flight)
        text = json.dumps(run_input, sort_keys=True, separators=(",", ":"), default=str)
        digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
        seen = self.runs_per_input.get(digest, 0)
        self.runs_per_input[digest] = seen + 1
        if seen:
            self.duplicate_runs += 1
            if seen == 1 and len(self.duplicates) < DUPLICATES_LISTED:
                self.duplicates.append(run_input)

    def report(self, in_flight: int) -> dict[str, Any]:
        return {
            "invokes": self.invokes,
            "runs": self.runs,
            "refused_inputs": self.refused_inputs,
            "concurrency_refused": self.concurrency_refused,
            "queries": self.queries,
            "rate_limited": self.rate_limited,
            "in_flight": in_flight,
            "peak_in_flight": self.peak_in_flight,
            "distinct_inputs": len(self.runs_per_input),
            "duplicate_runs": self.duplicate_runs,
            "duplicate_inputs": self.duplicates,
        }


class EmulatorState:
    """The workflows served, the runs started, the faults queued, the limits and the counters.

    ``seed`` seeds the generator of failures (``fail_probability``) and durations (``duration_jitter``): the same
    sequence after every start and every reset. ``concurrency_limit`` caps each key's runs in flight unless its
    workflow sets its own.
    """

    def __init__(
        self,
        workflows: dict[str, WorkflowConfig] | None = None,
        *,
        seed: int = 0,
        concurrency_limit: int | None = None,
        log_size: int = LOG_SIZE,
    ) -> None:
        if concurrency_limit is not None and concurrency_limit < 1:
            raise ValueError("concurrency_limit must be >= 1 (or None: no limit)")
        self.initial_workflows = dict(workflows) if workflows is not None else {DEFAULT_API_KEY: WorkflowConfig()}
        self.seed = seed
        self.concurrency_limit = concurrency_limit
        self.log_size = log_size
        self.connections = 0
        self.reset()

    def reset(self) -> None:
        """Forget runs, counters, faults and workflow changes; start the generator's sequence again."""
        self.workflows: dict[str, WorkflowConfig] = {
            k: WorkflowConfig(**vars(v)) for k, v in self.initial_workflows.items()
        }
        self.rng = random.Random(self.seed)
        self.runs: dict[str, Run] = {}
        self.faults: deque[Fault] = deque()
        self.requests = {INVOKE: 0, QUERY: 0}
        self.request_log: deque[dict[str, Any]] = deque(maxlen=self.log_size)
        self.deliveries: deque[dict[str, Any]] = deque(maxlen=self.log_size)
        self.sunk: deque[dict[str, Any]] = deque(maxlen=self.log_size)
        self.windows = RateWindows()
        self.in_flight = InFlight()
        self.keys: dict[str, KeyCounters] = {}
        self.connections_at_reset = self.connections

    def counters(self, api_key: str) -> KeyCounters:
        """The key's counters (labelled by :func:`key_id`, never by the key)."""
        counters = self.keys.get(api_key)
        if counters is None:
            counters = self.keys[api_key] = KeyCounters(key_id(api_key))
        return counters

    def concurrency_limit_for(self, workflow: WorkflowConfig) -> int | None:
        return workflow.concurrency_limit if workflow.concurrency_limit is not None else self.concurrency_limit

    def stats(self, *, logs: bool = True) -> dict[str, Any]:
        """The counters; with ``logs``, the request log, webhook deliveries and sink too (up to ``log_size`` each)."""
        now = time.time()
        stats: dict[str, Any] = {
            "requests": dict(self.requests),
            "invokes_by_key": {c.label: c.invokes for c in self.keys.values() if c.invokes},
            "keys": {c.label: c.report(self.in_flight.count(k, now)) for k, c in self.keys.items()},
            "runs": len(self.runs),
            "concurrency_limit": self.concurrency_limit,
            "connections": self.connections - self.connections_at_reset,
            "pending_faults": len(self.faults),
        }
        if logs:
            stats.update(
                request_log=list(self.request_log), webhook_deliveries=list(self.deliveries), sink=list(self.sunk)
            )
        return stats
