"""Workflow definitions the Alta emulator serves (one per API key)."""

from __future__ import annotations

import copy
import random
import string
from dataclasses import dataclass, field
from typing import Any, TypeGuard

#: The API key the emulator accepts out of the box, selecting ``todayNews``.
DEFAULT_API_KEY = "alta-emulator-key"

TODAY_NEWS_INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["topic"],
    "properties": {"topic": {"type": "string", "minLength": 1}},
    "additionalProperties": False,
}

TODAY_NEWS_OUTPUT: dict[str, Any] = {
    "news": [
        {
            "title": "${topic}: the day's leading story",
            "summary": "A concise summary of the most discussed ${topic} story today.",
            "media": "Alta Daily",
        },
        {
            "title": "${topic}: what analysts are watching",
            "summary": "Three developments in ${topic} that may matter this week.",
            "media": "Alta Wire",
        },
    ]
}


@dataclass
class WorkflowConfig:
    """How the emulator behaves for one API key.

    ``output`` is a JSON template: ``${name}`` in any string is replaced by the
    input's ``name`` field. With ``output_mode="echo"`` the output is the input.
    """

    name: str = "todayNews"
    version: str = "1.0.1"
    workflow_id: str = "wf-todaynews"
    input_schema: dict[str, Any] | None = field(default_factory=lambda: copy.deepcopy(TODAY_NEWS_INPUT_SCHEMA))
    duration: float = 1.0
    #: Spread of the runs' durations: each lasts ``duration`` plus or minus up to this many seconds, drawn uniformly
    #: from the emulator's seeded generator (the same sequence after every start and reset), never below 0.
    duration_jitter: float = 0.0
    #: An input field whose number (seconds) sets that run's duration instead of ``duration``.
    duration_field: str | None = None
    outcome: str = "succeed"  # or "fail"
    fail_probability: float = 0.0
    failure_message: str = "Node 'Summarise' failed: the model returned no content"
    output: Any = field(default_factory=lambda: copy.deepcopy(TODAY_NEWS_OUTPUT))
    output_mode: str = "template"  # or "echo"
    cost: float = 0.6928
    tokens: int = 1745
    rate_limit: int | None = None
    rate_window: float = 3600.0
    #: How old the key's first window is when the emulator first sees the key, and what others spent in it.
    rate_window_age: float = 0.0
    rate_used_before: int = 0
    webhook_copies: int = 1  # deliveries per webhook: 0 loses them, 2 duplicates them
    webhook_delay: float = 0.0  # seconds between the run's end and the delivery
    #: Wall-clock seconds per workflow second: 0.01 runs a "15 s" workflow in 0.15 s (its answers still say 15 s),
    #: for tests of what a run does rather than of how long it takes.
    time_scale: float = 1.0
    #: Runs the key may have in flight (PENDING or RUNNING) at once; one invoke more is answered 429
    #: ``CONCURRENCY_LIMIT_EXCEEDED`` and starts nothing. ``None``: the emulator's own limit (none by default).
    concurrency_limit: int | None = None
    #: How many of each run's first queries answer 404 ``RUN_NOT_FOUND`` before the run is found, as from an API
    #: that answers for a new run only a moment after its invoke: a task's wait meets a 404 its retry can fix.
    queries_not_found: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkflowConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown workflow settings {sorted(unknown)}; known: {sorted(known)}")
        config = cls(**data)
        if config.outcome not in ("succeed", "fail"):
            raise ValueError("outcome must be 'succeed' or 'fail'")
        if config.output_mode not in ("template", "echo"):
            raise ValueError("output_mode must be 'template' or 'echo'")
        for name in ("webhook_copies", "queries_not_found"):
            value = getattr(config, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0")
        if not _is_number(config.time_scale) or config.time_scale <= 0:
            raise ValueError("time_scale must be a number > 0")
        if not _is_number(config.duration_jitter) or config.duration_jitter < 0:
            raise ValueError("duration_jitter must be a number of seconds >= 0")
        limit = config.concurrency_limit
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError("concurrency_limit must be a whole number >= 1, or null for the emulator's own")
        return config

    def duration_for(self, run_input: dict[str, Any], rng: random.Random | None = None) -> float:
        """How long a run of ``run_input`` lasts: its ``duration_field``, else ``duration`` spread by
        ``duration_jitter`` (drawn from ``rng``)."""
        value = run_input.get(self.duration_field) if self.duration_field else None
        if _is_number(value) and value >= 0:
            return float(value)
        if self.duration_jitter and rng is not None:
            return max(0.0, self.duration + rng.uniform(-self.duration_jitter, self.duration_jitter))
        return self.duration

    def wall_seconds(self, seconds: float) -> float:
        """How long ``seconds`` of this workflow's time last on the wall clock."""
        return seconds * self.time_scale

    def failed(self, rng: random.Random) -> bool:
        return self.outcome == "fail" or (self.fail_probability > 0 and rng.random() < self.fail_probability)

    def render_output(self, run_input: dict[str, Any]) -> Any:
        if self.output_mode == "echo":
            return copy.deepcopy(run_input)
        values = {k: v if isinstance(v, str) else str(v) for k, v in run_input.items()}
        return _substitute(self.output, values)


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _substitute(node: Any, values: dict[str, str]) -> Any:
    if isinstance(node, str):
        return string.Template(node).safe_substitute(values)
    if isinstance(node, list):
        return [_substitute(item, values) for item in node]
    if isinstance(node, dict):
        return {key: _substitute(item, values) for key, item in node.items()}
    return node
