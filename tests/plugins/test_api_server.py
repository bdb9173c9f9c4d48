"""The plugin's apps reach the API server however it was started, and ``airflow plugins`` lists them."""

from __future__ import annotations

import pytest

from airflow_provider_alta.plugins.api_server import AltaPlugin


@pytest.fixture
def spend_entry() -> dict:
    (entry,) = [app for app in AltaPlugin.fastapi_apps if app["url_prefix"] == "/alta-spend"]
    return entry


def test_the_api_server_mounts_the_spend_view_whatever_its_command_line(spend_entry):
    """This process is pytest, not ``airflow api-server``: Airflow's own mounting still gets the view, built by the
    first request it receives."""
    from airflow.api_fastapi.app import init_plugins
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    app = FastAPI()
    init_plugins(app)
    assert "/alta-spend" in [getattr(route, "path", None) for route in app.routes]
    answer = TestClient(app).get("/alta-spend/api/spend")
    assert answer.status_code == 401, answer.text  # the view's own answer: it authenticates like Airflow's API
    assert spend_entry["app"].built


def test_airflow_plugins_lists_the_apps():
    from airflow import plugins_manager

    (ours,) = [info for info in plugins_manager.get_plugin_info() if info["name"] == AltaPlugin.name]
    assert [app["url_prefix"] for app in ours["fastapi_apps"]] == ["/alta-spend"]
