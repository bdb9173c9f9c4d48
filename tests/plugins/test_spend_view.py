"""The "Alta spend" view over real runs: DAGs run with ``dag.test()`` against the emulator, the view's app mounted
on an app with Airflow's auth manager (the way the API server mounts it), called over FastAPI's test client."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from airflow_provider_alta.plugins.api_server import AltaPlugin, spend_nav_view
from airflow_provider_alta.plugins.spend_filter import parse_filter
from airflow_provider_alta.plugins.spend_view import create_app
from airflow_provider_alta.testing.client import EmulatorClient
from tests.dag_runner import run_dag

KEY = "sk-spend-SECRET-61c0de"
FAIL_KEY = "sk-spend-FAIL-SECRET-7b21"
TODAY = datetime.datetime.now(datetime.timezone.utc).date()
EARLIER = TODAY - datetime.timedelta(days=3)
JSON = "/alta-spend/api/spend"


@pytest.fixture(scope="module")
def spend_runs(airflow_db, alta_emulator_server) -> None:
    """``t_spend``: news[0..3] (0.25 credits, 100 tokens each; [2] and [3] three days ago) and a FAILED ``fails``
    (the emulator bills a failed run half: 0.05, 20); ``t_spend_other``: one run (0.25, 100)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    emulator = EmulatorClient(alta_emulator_server.url)
    emulator.reset()
    emulator.configure(api_key=KEY, duration=0.05, cost=0.25, tokens=100)
    emulator.configure(api_key=FAIL_KEY, duration=0.05, cost=0.1, tokens=40, outcome="fail")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW_CONN_ALTA_DEFAULT", emulator.connection_uri(KEY))
        env.setenv("AIRFLOW_CONN_ALTA_SPEND_FAIL", emulator.connection_uri(FAIL_KEY))
        spend, other = run_dag("t_spend"), run_dag("t_spend_other")
    assert spend.ti("fails").state == "failed" and other.state == "success"
    assert [spend.ti("news", i).state for i in range(4)] == ["success"] * 4
    # Every run at noon of TODAY (news[2] and [3] of EARLIER), whatever the clock says when the runs or the
    # requests happen: a session that crosses midnight UTC sees the same days.
    ours = XComModel.dag_id.in_(("t_spend", "t_spend_other"))
    earlier = (XComModel.dag_id == "t_spend", XComModel.task_id == "news", XComModel.map_index.in_((2, 3)))
    with create_session() as session:
        _known_to_the_metadata_database(session, "t_spend", "t_spend_other")
        session.execute(update(XComModel).where(ours).values(timestamp=_noon(TODAY)))
        session.execute(update(XComModel).where(*earlier).values(timestamp=_noon(EARLIER)))


def _noon(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(12), datetime.timezone.utc)


def _known_to_the_metadata_database(session: Any, *dag_ids: str) -> None:
    """A DAG row for each DAG, as the DAG processor writes it in a deployment (Airflow 3.0's ``dag.test()`` writes
    none, and the auth manager lists the DAGs a user may read from those rows)."""
    from airflow.models.dag import DagModel

    for dag_id in dag_ids:
        if session.get(DagModel, dag_id) is None:
            session.add(
                DagModel(
                    dag_id=dag_id,
                    max_active_tasks=16,
                    max_consecutive_failed_dag_runs=0,
                    has_task_concurrency_limits=False,
                )
            )
    session.flush()


@pytest.fixture(scope="module")
def host(spend_runs) -> Iterator[tuple[TestClient, Any]]:
    """The view on an app with the deployment's auth manager (here one where some users read fewer DAGs)."""
    from airflow.api_fastapi.app import init_auth_manager

    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW__CORE__AUTH_MANAGER", "tests.plugins.spend_auth.SomeDagsAuthManager")
        app = FastAPI()
        manager = init_auth_manager(app)
        app.mount("/alta-spend", create_app())
        yield TestClient(app), manager


def token(manager: Any, username: str = "admin", role: str = "admin") -> str:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return str(manager.generate_jwt(SimpleAuthManagerUser(username=username, role=role)))


def get(host: tuple[TestClient, Any], path: str, user: str | None = "admin", **params: str) -> Any:
    client, manager = host
    headers = {"Authorization": f"Bearer {token(manager, user)}"} if user else {}
    if "start" not in params and "end" not in params:
        params["end"] = TODAY.isoformat()  # the default range, fixed to the runs' day (not the clock's)
    return client.get(path, params=params, headers=headers)


def test_without_a_range_the_last_30_days_up_to_today():
    day = datetime.date
    chosen = parse_filter(start=None, end=None, dag_id=None, readable_dag_ids={"t_spend"}, today=day(2026, 3, 31))
    assert (chosen.start, chosen.end, chosen.dag_id) == (day(2026, 3, 2), day(2026, 3, 31), None)
    ending = parse_filter(start=None, end="2026-01-31", dag_id="t_spend", readable_dag_ids={"t_spend"})
    assert (ending.start, ending.end, ending.dag_id) == (day(2026, 1, 2), day(2026, 1, 31), "t_spend")


def test_json_has_cost_and_tokens_per_day_and_per_dag_task_and_workflow(host):
    answer = get(host, JSON, dag_id="t_spend")
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["start"] == (TODAY - datetime.timedelta(days=29)).isoformat() and report["end"] == TODAY.isoformat()
    days = {day["date"]: day for day in report["days"]}
    assert len(days) == 30  # every day of the range, empty ones too
    assert (days[TODAY.isoformat()]["runs"], days[TODAY.isoformat()]["failures"]) == (3, 1)
    assert days[TODAY.isoformat()]["total_cost"] == pytest.approx(0.55)
    assert days[TODAY.isoformat()]["tokens"] == 220
    assert (days[EARLIER.isoformat()]["runs"], days[EARLIER.isoformat()]["total_cost"]) == (2, pytest.approx(0.5))
    assert sum(day["runs"] for day in report["days"]) == 5
    rows = {(row["dag_id"], row["task_id"], row["workflow"]): row for row in report["rows"]}
    assert set(rows) == {("t_spend", "news", "todayNews"), ("t_spend", "fails", "todayNews")}
    news, fails = rows["t_spend", "news", "todayNews"], rows["t_spend", "fails", "todayNews"]
    assert (news["runs"], news["failures"], news["tokens"]) == (4, 0, 400)
    assert (news["total_cost"], news["mean_cost"]) == (pytest.approx(1.0), pytest.approx(0.25))
    assert (fails["runs"], fails["failures"], fails["total_cost"]) == (1, 1, pytest.approx(0.05))
    assert report["totals"] == {"runs": 5, "failures": 1, "total_cost": 1.05, "mean_cost": 0.21, "tokens": 420}


def test_a_batch_counts_as_its_runs_with_their_cost_and_tokens(host, alta_emulator_server, tmp_path, monkeypatch):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    emulator = EmulatorClient(alta_emulator_server.url)
    emulator.configure(api_key=KEY, duration=0.05, cost=0.25, tokens=100)
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", emulator.connection_uri(KEY))
    monkeypatch.setenv("AIRFLOW_VAR_ALTA_SPEND_OUT", str(tmp_path))
    batch = run_dag("t_spend_batch")
    assert batch.ti("batch").state == "success"
    with create_session() as session:
        _known_to_the_metadata_database(session, "t_spend_batch")
        session.execute(update(XComModel).where(XComModel.dag_id == "t_spend_batch").values(timestamp=_noon(TODAY)))
    report = get(host, JSON, dag_id="t_spend_batch").json()
    assert [
        (row["task_id"], row["workflow"], row["runs"], row["failures"], row["tokens"]) for row in report["rows"]
    ] == [("batch", "todayNews", 3, 0, 300)]
    assert report["totals"] == {"runs": 3, "failures": 0, "total_cost": 0.75, "mean_cost": 0.25, "tokens": 300}


def test_date_range_filter_keeps_the_runs_of_those_days(host):
    report = get(host, JSON, dag_id="t_spend", start=EARLIER.isoformat(), end=EARLIER.isoformat()).json()
    assert [day["date"] for day in report["days"]] == [EARLIER.isoformat()]
    assert report["totals"]["runs"] == 2 and report["totals"]["total_cost"] == pytest.approx(0.5)
    assert [(row["task_id"], row["runs"]) for row in report["rows"]] == [("news", 2)]


def test_page_shows_the_chart_table_and_totals(host):
    answer = get(host, "/alta-spend/", dag_id="t_spend")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    page = answer.text
    assert f'data-date="{TODAY.isoformat()}" data-value="0.55' in page  # the cost bar of today
    assert page.count('class="bar bar-cost"') == 30 and page.count('class="bar bar-tokens"') == 30
    assert '<b id="total-tokens">420</b>' in page and "<td class=n>400</td>" in page
    assert '<b id="total-cost">1.05</b>' in page and '<b id="total-runs">5</b>' in page
    assert page.count('class="spend-row"') == 2 and "<script" not in page and "http" not in page.split("</style>")[0]


def test_a_user_sees_only_the_dags_they_may_read(host):
    everything = get(host, JSON).json()
    assert {"t_spend", "t_spend_other"} <= {row["dag_id"] for row in everything["rows"]}
    limited = get(host, JSON, user="only_other").json()
    assert {row["dag_id"] for row in limited["rows"]} == {"t_spend_other"}
    assert limited["totals"]["runs"] == 1 and limited["totals"]["total_cost"] == pytest.approx(0.25)
    page = get(host, "/alta-spend/", user="only_other").text
    assert "t_spend_other" in page and 'value="t_spend"' not in page and 'data-dag="t_spend"' not in page
    # A DAG the user may not read is answered as an unknown one: its existence is not revealed.
    hidden = get(host, JSON, user="only_other", dag_id="t_spend")
    unknown = get(host, JSON, user="only_other", dag_id="no_such_dag")
    assert hidden.status_code == unknown.status_code == 400
    assert hidden.json()["detail"] == unknown.json()["detail"].replace("no_such_dag", "t_spend")
    assert get(host, JSON, user="nothing").json()["totals"]["runs"] == 0


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"start": "2026-13-01"}, "start='2026-13-01' is not a date"),
        ({"end": "yesterday"}, "end='yesterday' is not a date"),
        ({"start": "2026-03-02", "end": "2026-03-01"}, "start (2026-03-02) is after end (2026-03-01)"),
        ({"start": "2024-01-01", "end": "2026-01-01"}, "at most 366 are allowed"),
        ({"dag_id": "no_such_dag"}, "unknown DAG 'no_such_dag'"),
    ],
)
def test_bad_input_is_a_clear_400(host, params, says):
    answer = get(host, JSON, **params)
    assert answer.status_code == 400 and says in answer.json()["detail"]
    page = get(host, "/alta-spend/", **params)
    assert page.status_code == 400 and says.replace("'", "&#x27;") in page.text


def test_no_valid_login_is_refused(host):
    client, manager = host
    for path in (JSON, "/alta-spend/"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer not-a-jwt"}).status_code in (401, 403)
    # The UI's session cookie is a valid login, as for Airflow's own API.
    client.cookies.set("_token", token(manager))
    try:
        assert client.get(JSON, params={"dag_id": "t_spend"}).json()["totals"]["runs"] == 5
    finally:
        client.cookies.clear()


def test_no_secret_reaches_the_page_or_the_json(host):
    pages = [(path, params) for path in (JSON, "/alta-spend/") for params in ({}, {"dag_id": "t_spend"})]
    texts = [get(host, path, **params).text for path, params in pages]
    for secret in (KEY, FAIL_KEY):
        assert all(secret not in text for text in texts)


def test_the_plugin_lists_the_page_in_the_ui_navigation_where_airflow_has_plugin_views():
    from airflow.plugins_manager import AirflowPlugin

    expected = [spend_nav_view()] if hasattr(AirflowPlugin, "external_views") else []
    assert AltaPlugin.external_views == expected
    assert spend_nav_view("/airflow")["href"] == "/airflow/alta-spend/"
    apps = AltaPlugin.fastapi_apps_for(_disabled())
    assert [app["url_prefix"] for app in apps] == ["/alta-spend"]


def _disabled() -> Any:
    from airflow_provider_alta._webhook.contract import WebhookSettings

    return WebhookSettings()


PROBE = """
import json, sys
import airflow.plugins_manager, airflow_provider_alta, airflow_provider_alta.operators.alta
before = set(sys.modules)  # Airflow 3.0's plugins manager imports FastAPI itself: only what the plugin adds counts
from airflow_provider_alta.plugins.api_server import AltaPlugin
ours = "airflow_provider_alta.plugins."
heavy = ("fastapi", "starlette", ours + "spend", ours + "webhook_receiver")
print(json.dumps({
    "listed": [app["url_prefix"] for app in AltaPlugin.fastapi_apps],
    "imported": sorted(m for m in set(sys.modules) - before if m.startswith(heavy)),
}))
"""


def test_outside_the_api_server_the_view_is_never_imported():
    """Loading the plugin lists both apps (the receiver enabled here) and imports neither them nor FastAPI: only a
    request, which only the API server that mounted them receives, builds them."""
    env = {**os.environ, "AIRFLOW__ALTA__WEBHOOK_ENABLED": "True"}
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, env=env)
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe == {"listed": ["/alta", "/alta-spend"], "imported": []}
