"""The two per-key limits: requests per rate window, and runs in flight at once (no HTTP here).

Both answer in constant time per request (the in-flight count in the logarithm of the runs in flight), so a batch
of 100,000 runs costs the emulator no more per request than its first.
"""

from __future__ import annotations

import heapq
import math

from airflow_provider_alta.testing.workflows import WorkflowConfig


class RateWindows:
    """Fixed windows per key: ``rate_limit`` requests (invokes and queries) per ``rate_window`` seconds."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}

    def take(self, api_key: str, workflow: WorkflowConfig, now: float) -> tuple[bool, dict[str, str]]:
        """Count one request: (whether the window is spent, the ``X-RateLimit-*`` / ``Retry-After`` headers)."""
        if workflow.rate_limit is None:
            return False, {}
        # The key's first window may be under way already, with requests other clients spent in it.
        start, used = self._windows.get(api_key, (now - workflow.rate_window_age, workflow.rate_used_before))
        if now >= start + workflow.rate_window:
            start, used = now, 0
        reset = start + workflow.rate_window
        headers = {
            "X-RateLimit-Limit": str(workflow.rate_limit),
            "X-RateLimit-Reset": str(int(reset) + (0 if float(reset).is_integer() else 1)),
        }
        if used >= workflow.rate_limit:
            headers["X-RateLimit-Remaining"] = "0"
            headers["Retry-After"] = str(max(1, int(reset - now + 0.999)))
            self._windows[api_key] = (start, used)
            return True, headers
        self._windows[api_key] = (start, used + 1)
        headers["X-RateLimit-Remaining"] = str(workflow.rate_limit - used - 1)
        return False, headers


class InFlight:
    """The runs each key has in flight: a heap of their end times (wall clock), the earliest first."""

    def __init__(self) -> None:
        self._ends: dict[str, list[float]] = {}

    def count(self, api_key: str, now: float) -> int:
        """Runs of the key not yet ended at ``now`` (forgetting the ended ones)."""
        ends = self._ends.get(api_key)
        if not ends:
            return 0
        while ends and ends[0] <= now:
            heapq.heappop(ends)
        return len(ends)

    def add(self, api_key: str, ends_at: float) -> int:
        """Count a started run; return the key's runs in flight with it."""
        ends = self._ends.setdefault(api_key, [])
        heapq.heappush(ends, ends_at)
        return len(ends)

    def retry_after(self, api_key: str, now: float) -> str:
        """``Retry-After`` for a refused invoke: when the key's first run in flight ends, in seconds rounded up to
        a hundredth (decimal, so that a test on a scaled clock is not told to wait a whole second)."""
        ends = self._ends.get(api_key)
        wait = ends[0] - now if ends else 0.0
        return f"{max(0.01, math.ceil(wait * 100) / 100):.2f}"
