"""The contract between the operator, the webhook receiver plugin and the trigger (pure, no I/O).

Alta calls back the URL and headers it was given at invoke time and signs
nothing, so the operator gives it a URL naming the task instance and a
header holding ``HMAC-SHA256(webhook_secret, task instance)``: a token only
that task instance's webhook carries. The run id cannot be in the token (it
is unknown until the invoke answers); the receiver binds the delivery to the
run instead by comparing the body's ``workflowRunId`` with the id the task
pushed to XCom, and the trigger confirms every notice with one query to
Alta before finishing, so a replayed or forged notice never completes a task.

The receiver writes a small notice (run id, status, arrival time) into the
task instance's XCom under :data:`MAILBOX_KEY`; the trigger reads it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

from airflow_provider_alta.exceptions import AltaValidationError
from airflow_provider_alta.models import RunStatus, WorkflowRun
from airflow_provider_alta.validation import is_absolute_http_url

#: The XCom key of the mailbox the receiver writes and the trigger reads.
MAILBOX_KEY = "alta_webhook_mailbox"
#: What the task puts in its mailbox before invoking: reads then find a value, not a 404.
EMPTY_MAILBOX: dict[str, Any] = {"workflow_run_id": None, "status": None, "received_at": None}
#: The header carrying the task instance's token.
SIGNATURE_HEADER = "X-Alta-Airflow-Signature"
#: Where the plugin's app is mounted on the API server.
URL_PREFIX = "/alta"
#: The receiver's route inside the app.
ROUTE = "/webhook/v1/{conn_id}/{dag_id}/{run_id}/{task_id}/{map_index}"
#: The ``airflow.cfg`` section (or ``AIRFLOW__ALTA__*`` variables) of the receiver.
CONFIG_SECTION = "alta"
#: Largest webhook body the receiver reads (an Alta run body with its output).
MAX_BODY_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class TaskInstanceRef:
    """Which task instance, through which Alta connection, a webhook is for."""

    conn_id: str
    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1

    def path(self) -> str:
        """The receiver route for this task instance, every part percent-encoded."""
        parts = (self.conn_id, self.dag_id, self.run_id, self.task_id, str(self.map_index))
        return "/webhook/v1/" + "/".join(quote(part, safe="") for part in parts)

    def message(self) -> bytes:
        """What the token signs: the identity as a JSON list, so no two identities collide."""
        return json.dumps([self.conn_id, self.dag_id, self.run_id, self.task_id, self.map_index]).encode()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        index = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}/{self.run_id}/{self.task_id}{index}"


def sign(secret: str, ref: TaskInstanceRef) -> str:
    """The header value that authenticates webhooks for ``ref``."""
    return "sha256=" + hmac.new(secret.encode(), ref.message(), hashlib.sha256).hexdigest()


def signature_matches(secret: str, ref: TaskInstanceRef, header: str | None) -> bool:
    """Constant-time check of a delivered header against the expected token."""
    if not header:
        return False
    return hmac.compare_digest(sign(secret, ref).encode(), header.strip().encode())


@dataclass(frozen=True)
class WebhookSettings:
    """The ``[alta]`` configuration of the receiver."""

    enabled: bool = False
    base_url: str | None = None

    @classmethod
    def from_config(cls) -> WebhookSettings:
        from airflow_provider_alta.compat import conf

        return cls(
            enabled=conf.getboolean(CONFIG_SECTION, "webhook_enabled", fallback=False),
            base_url=conf.get(CONFIG_SECTION, "webhook_base_url", fallback=None) or None,
        )

    def receiver_url(self) -> str:
        """The receiver's public root URL; a clear error when the plugin is not set up."""
        if not self.enabled:
            raise AltaValidationError(
                "airflow_webhook=True needs the Alta webhook receiver: set [alta] webhook_enabled = True "
                "(AIRFLOW__ALTA__WEBHOOK_ENABLED) and [alta] webhook_base_url on the API server and the workers"
            )
        base = (self.base_url or "").strip().rstrip("/")
        if not is_absolute_http_url(base):
            raise AltaValidationError(
                "[alta] webhook_base_url must be the absolute http(s) URL at which Alta reaches Airflow's "
                f"API server, e.g. https://airflow.example.com; got {self.base_url!r}"
            )
        return base + URL_PREFIX


def airflow_webhook(settings: WebhookSettings, secret: str | None, ref: TaskInstanceRef) -> dict[str, Any]:
    """The webhook entry that points Alta at the receiver for ``ref``."""
    url = settings.receiver_url()
    if not secret:
        raise AltaValidationError(
            f"airflow_webhook=True needs a 'webhook_secret' extra on connection {ref.conn_id!r}: a long random "
            "string that signs the receiver's URLs"
        )
    return {"method": "POST", "url": url + ref.path(), "headers": {SIGNATURE_HEADER: sign(secret, ref)}}


def mailbox_notice(body: Any, received_at: float | None = None) -> dict[str, Any]:
    """The notice the receiver stores for a delivered run body (raises on a body that is not a run)."""
    run = WorkflowRun.from_response(body, endpoint="webhook", copy_body=False)
    return {
        "workflow_run_id": run.workflow_run_id,
        "status": run.status.value,
        "received_at": time.time() if received_at is None else received_at,
    }


def same_notice(a: Any, b: Any) -> bool:
    """Whether two notices report the same thing (a duplicate delivery)."""
    return (
        isinstance(a, dict)
        and isinstance(b, dict)
        and a.get("workflow_run_id") == b.get("workflow_run_id")
        and a.get("status") == b.get("status")
    )


def announces_end(notice: Any, workflow_run_id: str) -> bool:
    """Whether a mailbox notice says ``workflow_run_id`` has ended (still to be confirmed with Alta)."""
    if not isinstance(notice, dict) or notice.get("workflow_run_id") != workflow_run_id:
        return False
    try:
        return RunStatus(notice.get("status")).is_terminal
    except ValueError:
        return False
