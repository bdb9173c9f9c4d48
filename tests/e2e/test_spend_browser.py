"""The "Alta spend" page in a real browser (Debian's chromium, driven by Playwright) on a real Airflow.

One LOCAL stack (api-server, scheduler, dag-processor, triggerer; SQLite) with the emulator; two DAGs make five
runs of known cost. Where chromium is missing the test is skipped with what to install;
``ALTA_TESTS_REQUIRE_SERVICES=1`` (set by ``.ci/run``) turns that skip into a failure.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import ROOT, SECRETS, Shape, Stack

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
#: Where the screenshot is kept (gitignored); docs/alta-spend.png is a committed copy.
ARTIFACTS = ROOT / ".artifacts"
SPEND_KEY = "sk-e2e-SPEND-SECRET-5c9e1a"
SPEND_FAIL_KEY = "sk-e2e-SPEND-FAIL-SECRET-0f3b"
SHAPE = Shape(
    dag_files=("spend_dags.py",),
    workflows=(
        (SPEND_KEY, {"duration": 0.3, "cost": 0.5, "tokens": 1000}),
        (SPEND_FAIL_KEY, {"duration": 0.3, "cost": 0.5, "tokens": 1000, "outcome": "fail"}),
    ),
    connections=(("alta_spend", SPEND_KEY, {}), ("alta_spend_fail", SPEND_FAIL_KEY, {})),
)
# e2e_spend: news[0..2] 0.5 credits / 1000 tokens each, fails FAILED (billed half: 0.25 / 500);
# e2e_spend_other: digest 0.5 / 1000.
ALL_COST, ALL_TOKENS, SPEND_COST, SPEND_TOKENS = 2.25, 4500, 1.75, 3500


def _chromium() -> None:
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} ('apt-get install -y chromium')")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (the test extra: pip install -e '.[test]')")
    if missing:
        reason = f"the browser test needs {' and '.join(missing)}; never 'playwright install'"
        if os.environ.get("ALTA_TESTS_REQUIRE_SERVICES"):
            pytest.fail(f"ALTA_TESTS_REQUIRE_SERVICES is set, but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def spend_stack() -> Iterator[Stack]:
    _chromium()
    stack = Stack(Path(tempfile.mkdtemp(prefix="alta-e2e-spend-")), SHAPE)
    try:
        stack.start()
        runs = {dag_id: stack.trigger(dag_id) for dag_id in ("e2e_spend", "e2e_spend_other")}
        states = {dag_id: stack.wait_dag_run(dag_id, run_id) for dag_id, run_id in runs.items()}
        assert states == {"e2e_spend": "failed", "e2e_spend_other": "success"}  # e2e_spend's "fails" FAILED
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def bars(page: Any, kind: str) -> dict[str, float]:
    script = "rects => rects.map(r => [r.dataset.date, r.getBoundingClientRect().height, r.dataset.value])"
    values = page.eval_on_selector_all(f"rect.bar-{kind}", script)
    assert all(height > 0 for _, height, value in values if float(value) > 0)  # drawn, not just in the markup
    return {date: float(value) for date, _, value in values}


def test_spend_page_in_a_browser(spend_stack, browser):
    stack, today = spend_stack, datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    context = browser.new_context(viewport={"width": 1180, "height": 1000})
    page = context.new_page()
    # No login: refused, page and JSON alike.
    assert page.goto(f"{stack.api}/alta-spend/").status == 401
    assert page.goto(f"{stack.api}/alta-spend/api/spend").status == 401
    # Logged in as the UI logs in: Airflow's session cookie.
    context.add_cookies([{"name": "_token", "value": stack.token, "url": stack.api}])
    assert page.goto(f"{stack.api}/alta-spend/").status == 200
    assert page.text_content("#total-cost") == str(ALL_COST)
    assert page.text_content("#total-runs") == "5" and page.text_content("#total-failures") == "1"
    cost, tokens = bars(page, "cost"), bars(page, "tokens")
    assert len(cost) == 30 and sum(cost.values()) == pytest.approx(ALL_COST) and cost[today] == pytest.approx(ALL_COST)
    assert sum(tokens.values()) == ALL_TOKENS and page.text_content("#total-tokens") == f"{ALL_TOKENS:,}"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "alta-spend.png"), full_page=True)
    content = page.content()
    # The filter: one DAG.
    page.select_option("#dag_id", "e2e_spend")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "dag_id=e2e_spend" in page.url
    assert page.text_content("#total-cost") == str(SPEND_COST) and sum(bars(page, "tokens").values()) == SPEND_TOKENS
    assert set(page.eval_on_selector_all("tr.spend-row", "rows => rows.map(r => r.dataset.dag)")) == {"e2e_spend"}
    # The JSON behind it, from the browser's own session.
    answer = page.goto(f"{stack.api}/alta-spend/api/spend?dag_id=e2e_spend")
    report = json.loads(answer.text())
    assert report["totals"] == {
        "runs": 3 + 1,
        "failures": 1,
        "total_cost": SPEND_COST,
        "mean_cost": 0.4375,
        "tokens": SPEND_TOKENS,
    }
    for text in (content, answer.text()):
        assert not [secret for secret in (*SECRETS, SPEND_KEY, SPEND_FAIL_KEY) if secret in text]
    context.close()


def test_spend_page_in_the_airflow_ui_navigation(spend_stack, browser):
    from airflow.plugins_manager import AirflowPlugin

    plugins = spend_stack.request("GET", "/api/v2/plugins")["plugins"]
    if not hasattr(AirflowPlugin, "external_views"):  # Airflow 3.0: no plugin views in the UI, the URL only
        assert [v for p in plugins for v in p.get("external_views", [])] == []
        return
    (entry,) = [v for p in plugins for v in p.get("external_views", []) if v["name"] == "Alta spend"]
    assert (entry["href"], entry["url_route"]) == ("/alta-spend/", "alta-spend")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": "_token", "value": spend_stack.token, "url": spend_stack.api}])
    page = context.new_page()
    page.goto(f"{spend_stack.api}/plugin/alta-spend")
    frame = page.frame_locator("iframe")
    frame.locator("#total-cost").wait_for(timeout=30_000)
    assert frame.locator("#total-cost").text_content() == str(ALL_COST)
    page.screenshot(path=str(ARTIFACTS / "alta-spend-in-ui.png"))
    context.close()


def test_a_bad_token_is_refused(spend_stack):
    for token in ("", "not-a-jwt"):
        request = urllib.request.Request(
            f"{spend_stack.api}/alta-spend/api/spend", headers={"Authorization": f"Bearer {token}"} if token else {}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code in (401, 403)
