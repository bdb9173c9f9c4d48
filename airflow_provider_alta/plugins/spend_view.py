"""The "Alta spend" view: a FastAPI app Airflow's API server mounts under ``/alta-spend``.

``GET /alta-spend/`` is the page, ``GET /alta-spend/api/spend`` the same report as JSON; both take ``dag_id``,
``start`` and ``end`` (YYYY-MM-DD, UTC days) and answer 400 with the reason for a bad range or an unknown DAG.
Both authenticate the caller as Airflow's own API does (a Bearer JWT, or the UI's session cookie: 401/403
without a valid one) and show only the DAGs the auth manager lets that user read. The numbers come from the
run XComs (:mod:`.spend_query`); no connection, key or header is read, so none can appear.

Imported by the API server only (see :mod:`.api_server`), never by a DAG file or a task.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations at runtime.

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

#: Where the API server mounts the view.
URL_PREFIX = "/alta-spend"
JSON_PATH = "/api/spend"


def readable_dag_ids(user: Any, session: Any) -> set[str]:
    """The DAGs the auth manager lets ``user`` read."""
    from airflow.api_fastapi.app import get_auth_manager

    return set(get_auth_manager().get_authorized_dag_ids(user=user, method="GET", session=session))


def create_app(mount_path: str = URL_PREFIX) -> "FastAPI":
    """Build the view's app; ``mount_path`` is where links on the page point (the API server's mount)."""
    from fastapi import Depends, FastAPI, Query
    from fastapi.responses import HTMLResponse, JSONResponse

    from airflow_provider_alta._airflow.version_compat.api_server import api_server_user
    from airflow_provider_alta.plugins.spend_filter import SpendFilterError, parse_filter
    from airflow_provider_alta.plugins.spend_page import render_error, render_page
    from airflow_provider_alta.plugins.spend_query import SpendReport, spend_report

    app = FastAPI(title="Alta spend", docs_url=None, redoc_url=None, openapi_url=None)
    page_url, json_url = f"{mount_path}/", f"{mount_path}{JSON_PATH}"
    user_dependency = Depends(api_server_user())
    no_store = {"Cache-Control": "no-store"}

    def report_for(user: Any, start: str | None, end: str | None, dag_id: str | None) -> tuple[SpendReport, set[str]]:
        from airflow.utils.session import create_session

        with create_session() as session:
            dag_ids = readable_dag_ids(user, session)
            spend_filter = parse_filter(start=start, end=end, dag_id=dag_id, readable_dag_ids=dag_ids)
            return spend_report(session, spend_filter, dag_ids), dag_ids

    @app.get(JSON_PATH)
    def spend_json(
        user: Any = user_dependency,
        start: str | None = Query(None),
        end: str | None = Query(None),
        dag_id: str | None = Query(None),
    ) -> JSONResponse:
        try:
            report, _ = report_for(user, start, end, dag_id)
        except SpendFilterError as err:
            return JSONResponse({"detail": str(err)}, status_code=400, headers=no_store)
        return JSONResponse(report.to_dict(), headers=no_store)

    @app.get("/")
    def spend_page(
        user: Any = user_dependency,
        start: str | None = Query(None),
        end: str | None = Query(None),
        dag_id: str | None = Query(None),
    ) -> HTMLResponse:
        try:
            report, dag_ids = report_for(user, start, end, dag_id)
        except SpendFilterError as err:
            return HTMLResponse(render_error(400, str(err), page_url), status_code=400, headers=no_store)
        return HTMLResponse(render_page(report, dag_ids, page_url, json_url), headers=no_store)

    return app
