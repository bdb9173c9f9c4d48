"""The provider's one Airflow plugin: what it adds to the API server.

* the webhook receiver under ``/alta`` (:mod:`.webhook_receiver`), when ``[alta] webhook_enabled`` is true;
* the "Alta spend" view under ``/alta-spend`` (:mod:`.spend_view`), always, and its entry in the UI's navigation
  ("Browse" menu) where the UI has plugin views (Airflow 3.1+; on 3.0 it is reachable by its URL only).

Every Airflow process loads plugins, and ``airflow plugins`` lists their apps wherever it runs, so the apps are
always listed but each is a :class:`~.lazy_app.LazyASGIApp`: FastAPI, the view and the receiver are imported
and built by the first request the app receives, which only the API server that mounted it sends. Nothing
here imports them at plugin load. The two apps share nothing but this mount.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_alta._airflow.version_compat import conf
from airflow_provider_alta._airflow.version_compat.api_server import plugin_nav_views
from airflow_provider_alta._webhook.contract import URL_PREFIX as WEBHOOK_PREFIX
from airflow_provider_alta._webhook.contract import WebhookSettings
from airflow_provider_alta.plugins.lazy_app import ASGIApp, LazyASGIApp

#: Where the spend view is mounted (kept equal to ``spend_view.URL_PREFIX``, which only the API server imports).
SPEND_PREFIX = "/alta-spend"


def _base_path() -> str:
    """The path part of ``[api] base_url`` (empty when Airflow is served at the root)."""
    return urlparse(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


def spend_nav_view(base_path: str = "") -> dict[str, Any]:
    """The UI's navigation entry for the spend view (an ``external_views`` entry, shown in its frame)."""
    return {
        "name": "Alta spend",
        "href": f"{base_path}{SPEND_PREFIX}/",
        "url_route": "alta-spend",
        "destination": "nav",
        "category": "browse",
    }


def _spend_app() -> ASGIApp:
    from airflow_provider_alta.plugins import spend_view

    return spend_view.create_app(_base_path() + SPEND_PREFIX)


def _receiver_app() -> ASGIApp:
    from airflow_provider_alta._webhook.receiver import create_app

    return create_app()


class AltaPlugin(AirflowPlugin):
    """Mounts the webhook receiver (when enabled) and the spend view on the API server, and lists the view in the
    UI's navigation."""

    name = "alta_webhook_receiver"

    @classmethod
    def fastapi_apps_for(cls, settings: WebhookSettings) -> list[dict[str, Any]]:
        """The apps to mount, each built by its first request (see :class:`~.lazy_app.LazyASGIApp`)."""
        apps: list[dict[str, Any]] = [
            {"app": LazyASGIApp(_spend_app, "Alta spend"), "url_prefix": SPEND_PREFIX, "name": "Alta spend"}
        ]
        if settings.enabled:
            receiver = LazyASGIApp(_receiver_app, "Alta webhook receiver")
            apps.insert(0, {"app": receiver, "url_prefix": WEBHOOK_PREFIX, "name": "Alta webhook receiver"})
        return apps


AltaPlugin.fastapi_apps = AltaPlugin.fastapi_apps_for(WebhookSettings.from_config())
AltaPlugin.external_views = plugin_nav_views([spend_nav_view(_base_path())])
