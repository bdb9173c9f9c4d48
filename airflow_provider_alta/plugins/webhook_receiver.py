"""The Alta webhook receiver: a FastAPI app Airflow's API server mounts under ``/alta``.

Airflow does not authenticate plugin endpoints, so this one does: every
delivery must carry the task instance's token (see
:mod:`airflow_provider_alta.webhook`). The app answers

* 401 for a missing or wrong token (nothing is read or written; whether the
  task instance exists is not revealed);
* 400 for a body that is not an Alta run, 413 for one over 8 MiB;
* 404 for an unknown task instance;
* 409 when the body names another run than the one the task started;
* 200 otherwise: ``stored``, ``duplicate`` (same run and status already in
  the mailbox) or ``task_finished`` (nothing to wake).

It logs the outcome with the task instance and run id, never a body or header.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the route's
# annotations at runtime, and ``Request`` is imported inside ``create_app``.

import json
import logging
import sys
from typing import TYPE_CHECKING, Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_alta.webhook import (
    MAX_BODY_BYTES,
    ROUTE,
    SIGNATURE_HEADER,
    URL_PREFIX,
    TaskInstanceRef,
    WebhookSettings,
    mailbox_notice,
    signature_matches,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from airflow_provider_alta.plugins.mailbox_store import MailboxStore

log = logging.getLogger(__name__)


def create_app(store: "MailboxStore | None" = None) -> "FastAPI":
    """Build the receiver app (``store`` defaults to the metadata database)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    from airflow_provider_alta.exceptions import AltaError
    from airflow_provider_alta.plugins.mailbox_store import Delivery, MailboxStore

    mailbox = store or MailboxStore()
    app = FastAPI(title="Alta webhook receiver", docs_url=None, redoc_url=None, openapi_url=None)

    def answer(
        status: int,
        result: str,
        ref: TaskInstanceRef,
        detail: str | None = None,
        notice: dict[str, Any] | None = None,
    ) -> JSONResponse:
        body: dict[str, Any] = {"result": result}
        if detail:
            body["detail"] = detail
        about = f" (run {notice['workflow_run_id']}, {notice['status']})" if notice else ""
        log.info("Alta webhook for %s%s: %s %s", ref.describe(), about, status, result)
        return JSONResponse(body, status_code=status)

    @app.post(ROUTE)
    async def receive(
        conn_id: str, dag_id: str, run_id: str, task_id: str, map_index: int, request: Request
    ) -> JSONResponse:
        ref = TaskInstanceRef(conn_id=conn_id, dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index)
        secret = await run_in_threadpool(mailbox.webhook_secret, conn_id)
        if secret is None or not signature_matches(secret, ref, request.headers.get(SIGNATURE_HEADER)):
            return answer(401, "unauthorized", ref, f"missing or invalid {SIGNATURE_HEADER} header")
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return answer(413, "too_large", ref, f"body over {MAX_BODY_BYTES} bytes")
        try:
            notice = mailbox_notice(json.loads(raw))
        except (ValueError, AltaError):
            return answer(400, "not_a_run", ref, "the body is not an Alta workflow run")
        outcome, state = await run_in_threadpool(mailbox.deliver, ref, notice)
        if outcome is Delivery.UNKNOWN_TASK:
            return answer(404, outcome.value, ref, "no such task instance", notice)
        if outcome is Delivery.OTHER_RUN:
            detail = "the body names another run than the one this task started"
            return answer(409, outcome.value, ref, detail, notice)
        return answer(200, outcome.value, ref, f"task is {state}" if state else None, notice)

    return app


def _running_in_api_server() -> bool:
    return len(sys.argv) > 1 and sys.argv[1] == "api-server"


class AltaWebhookPlugin(AirflowPlugin):
    """Mounts the receiver on the API server when ``[alta] webhook_enabled`` is true.

    Other Airflow processes load the plugin too; only the API server builds the app.
    """

    name = "alta_webhook_receiver"

    @classmethod
    def fastapi_apps_for(cls, settings: WebhookSettings, in_api_server: bool) -> list[dict[str, Any]]:
        if not (settings.enabled and in_api_server):
            return []
        return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Alta webhook receiver"}]


AltaWebhookPlugin.fastapi_apps = AltaWebhookPlugin.fastapi_apps_for(
    WebhookSettings.from_config(), _running_in_api_server()
)
