"""What a plugin of the API server meets differently on each release: the UI's navigation and the caller's identity."""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["api_server_user", "plugin_nav_views"]


def plugin_nav_views(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A plugin's ``external_views`` entries for the UI's navigation (3.1+); none where the UI has no such entries
    (3.0), whose pages are then reachable by their URL only."""
    from airflow.plugins_manager import AirflowPlugin

    return views if hasattr(AirflowPlugin, "external_views") else []


def api_server_user() -> Any:
    """The API server's FastAPI dependency naming the caller, for a plugin's own routes.

    It accepts what Airflow's own API accepts: a JWT as ``Authorization: Bearer``, or the UI's session cookie
    (how a page opened from the UI is authenticated), and answers 401 when there is none, 401/403 for an
    expired or invalid one. On 3.1+ that is Airflow's ``get_user`` (``api_fastapi.core_api.security``, an
    internal); 3.0's reads the header only, so the token is taken from the header or the cookie
    (``COOKIE_NAME_JWT_TOKEN``) here and handed to it.
    """
    from airflow.api_fastapi.core_api.security import get_user as airflow_get_user

    if "request" in inspect.signature(airflow_get_user).parameters:  # Airflow 3.1+
        return airflow_get_user
    get_user: Any = airflow_get_user  # 3.0's takes the token itself
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from fastapi import HTTPException, Request

    async def user_from_header_or_cookie(request: Request) -> Any:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            token = request.cookies.get(COOKIE_NAME_JWT_TOKEN, "")
        if not token.strip():
            raise HTTPException(status_code=401, detail="Not authenticated")
        return await get_user(token.strip())

    # FastAPI reads the annotations at runtime; this module's are strings (``from __future__ import annotations``).
    user_from_header_or_cookie.__annotations__ = {"request": Request, "return": Any}
    return user_from_header_or_cookie
