"""The shared rate budget: one key's quota shared between pollers and processes."""

from __future__ import annotations

import pytest

from airflow_provider_alta._core.protocol import parse_rate_limit
from airflow_provider_alta._core.ratelimit import RateBudget, key_fingerprint


def test_budget_shares_remaining_quota_between_pollers():
    budget = RateBudget()
    budget.observe(
        parse_rate_limit({"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "50", "X-RateLimit-Reset": "1060"})
    )
    for _ in range(10):
        budget.register_poller()
    # 45 usable requests (5 % reserve) over 60 s for 10 pollers: each waits 60 * 10 / 45 s.
    assert budget.poll_spacing(now=1000) == pytest.approx(60 * 10 / 45)
    for _ in range(45):
        assert budget.acquire(now=1000) == 0
    assert budget.acquire(now=1000) == pytest.approx(60)  # reserve reached: wait for the window
    assert budget.acquire(now=1000, for_poll=False) == 0  # an invoke may still use the reserve
    assert budget.acquire(now=1061) == 0  # new window


def test_starved_pollers_wait_for_the_new_window_not_beyond_it():
    budget = RateBudget()
    budget.observe(
        parse_rate_limit({"X-RateLimit-Limit": "80", "X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "1009"})
    )
    for _ in range(50):
        budget.register_poller()
    # 1 usable request for 50 pollers: spreading them over this window would mean 450 s; the window ends in 9 s.
    assert budget.poll_spacing(now=1000) == pytest.approx(9)


def test_budget_retry_after_blocks_everyone_and_stale_figures_never_raise_remaining():
    budget = RateBudget()
    budget.block(5, now=100)
    assert budget.acquire(now=101) == pytest.approx(4)
    assert budget.acquire(now=106) == 0
    budget.observe(parse_rate_limit({"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": "500"}))
    budget.observe(parse_rate_limit({"X-RateLimit-Remaining": "12", "X-RateLimit-Reset": "500"}))
    assert budget.snapshot().remaining == 10


def test_fingerprint_hides_key():
    fp = key_fingerprint("https://altatech.ai/", "sk-secret")
    assert "sk-secret" not in fp and fp == key_fingerprint("https://altatech.ai", "sk-secret")


def _share_one_key(budgets: list[tuple[RateBudget, int]], *, limit: int, window: float, until: float) -> list[int]:
    """Pollers in several processes (one budget each) polling one key's fixed window; the server's count at
    every tenth of ``until``. Each answer carries the server's figures, as Alta's do."""
    server = {"used": 0}
    due = []
    for budget, pollers in budgets:
        for _ in range(pollers):
            budget.register_poller()
        due += [[0.0, budget] for _ in range(pollers)]
    marks: list[int] = []
    while (now := min(entry[0] for entry in due)) < until:
        for entry in due:
            if entry[0] > now:
                continue
            budget = entry[1]
            wait = budget.acquire(now)
            if wait > 0:
                entry[0] = now + wait
                continue
            assert server["used"] < limit, "a request the key could not pay for (429)"
            server["used"] += 1
            headers = {
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": str(limit - server["used"]),
                "X-RateLimit-Reset": str(int(window)),
            }
            budget.observe(parse_rate_limit(headers))
            entry[0] = now + max(1.0, budget.poll_spacing(now))
        while len(marks) < 10 and now >= (len(marks) + 1) * until / 10:
            marks.append(server["used"])
    return [*marks, *[server["used"]] * (10 - len(marks))]


class _PerProcessOnly(RateBudget):
    """The budget without the share estimate: each process spaces polls for its own pollers only."""

    def _share(self) -> float:
        return 1.0


@pytest.mark.parametrize("processes", [[50, 50], [48, 48, 1, 1, 1, 1]])
def test_processes_sharing_one_key_keep_the_even_pace_together(processes):
    """Two triggerers (and a worker's task processes) on one 1,000/h key: together they spend the window at the
    pace one process alone would, instead of each at its own full rate."""
    shared = _share_one_key([(RateBudget(), n) for n in processes], limit=1000, window=3600, until=3599)
    alone = _share_one_key([(_PerProcessOnly(), n) for n in processes], limit=1000, window=3600, until=3599)
    half, four_fifths = 4, 7  # the server's count at 50 % and 80 % of the window
    assert shared[half] <= 0.6 * 1000 and shared[four_fifths] <= 0.9 * 950, shared
    assert shared[-1] >= 0.8 * 950, shared  # the window's requests are still used, only spread
    # Per process only, each spends at its own full rate: the key is dry long before the window ends.
    assert alone[four_fifths] >= 940, alone


def test_a_process_learns_its_share_of_the_keys_traffic():
    budget = RateBudget()
    budget.observe(parse_rate_limit({"X-RateLimit-Remaining": "900", "X-RateLimit-Reset": "3600"}))
    assert budget.share() == 1.0
    for _ in range(5):
        budget.acquire(now=0)
    # The server counted 20 requests meanwhile, 5 of them ours: a quarter of the key's traffic.
    budget.observe(parse_rate_limit({"X-RateLimit-Remaining": "880", "X-RateLimit-Reset": "3600"}))
    assert budget.share() == pytest.approx(0.25)
    budget.register_poller()
    assert budget.poll_spacing(now=0) == pytest.approx(3600 * 4 / 880)  # it spaces polls for 4 pollers
    assert budget.acquire(now=3601) == 0 and budget.share() == 1.0  # a new window starts afresh
