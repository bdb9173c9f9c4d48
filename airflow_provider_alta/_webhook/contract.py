"""The contract between the operator, the webhook receiver plugin and the trigger (pure, no I/O).

Alta calls back the URL and headers it was given at invoke time and signs
nothing, so the operator gives it a URL naming a :class:`WebhookGrant` (one
try of one task instance, the connection that task uses, an expiry time) and
a header holding ``HMAC-SHA256(webhook_secret, grant)``: a token that opens
only that try's mailbox, only until it expires, and only when the task really
runs on that connection (the operator records its connection id in the
mailbox it opens; the receiver compares). The run id cannot be in the token
(it is unknown until the invoke answers); the receiver binds the delivery to
the run instead by comparing the body's ``workflowRunId`` with the id the
task pushed to XCom, and the trigger confirms every notice with one query to
Alta before finishing, so a replayed or forged notice never completes a task.

The receiver writes a small notice (run id, status, arrival time) into the
task instance's XCom under :data:`MAILBOX_KEY`; the trigger reads it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

from airflow_provider_alta._core.validation import is_absolute_http_url
from airflow_provider_alta.exceptions import AltaValidationError
from airflow_provider_alta.models import RunStatus, WorkflowRun

#: The XCom key of the mailbox the receiver writes and the trigger reads.
MAILBOX_KEY = "alta_webhook_mailbox"
#: The header carrying the task instance's token.
SIGNATURE_HEADER = "X-Alta-Airflow-Signature"
#: Where the plugin's app is mounted on the API server.
URL_PREFIX = "/alta"
#: The version of the route and of what its token signs (v1 tokens named no try, expiry or mailbox owner).
ROUTE_VERSION = "v2"
#: The receiver's route inside the app: every signed field, so the receiver can recompute the token.
ROUTE = f"/webhook/{ROUTE_VERSION}/" + "/".join(
    f"{{{name}}}" for name in ("conn_id", "dag_id", "run_id", "task_id", "map_index", "try_number", "expires_at")
)
#: The ``airflow.cfg`` section (or ``AIRFLOW__ALTA__*`` variables) of the receiver.
CONFIG_SECTION = "alta"
#: Largest webhook body the receiver reads (an Alta run body with its output).
MAX_BODY_BYTES = 8 * 1024 * 1024
#: Default token lifetime: a week, longer than any run the provider waits for (Airflow's own task timeouts and
#: the longest Alta runs measured are hours); ``[alta] webhook_token_lifetime`` changes it.
DEFAULT_TOKEN_LIFETIME = 7 * 24 * 3600
#: Airflow's ids (connection, DAG, run, task) are at most this long (its ``ID_LEN`` column width).
MAX_ID_LENGTH = 250
#: Airflow stores map indexes and try numbers in 32-bit integer columns.
MAX_INT32 = 2**31 - 1
_DECIMAL = re.compile(r"-1|0|[1-9][0-9]{0,10}")


@dataclass(frozen=True)
class TaskInstanceRef:
    """Which task instance, through which Alta connection, a webhook is for."""

    conn_id: str
    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        index = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}/{self.run_id}/{self.task_id}{index}"


@dataclass(frozen=True)
class WebhookGrant:
    """What one token admits: one try of one task instance, through one connection, until ``expires_at``.

    Binding the try means a retry gets a new token and the old one is refused (the task instance's current
    try differs); the expiry bounds how long a leaked token is worth anything within a try.
    """

    ref: TaskInstanceRef
    try_number: int
    expires_at: int

    def _parts(self) -> tuple[str, str, str, str, int, int, int]:
        ref = self.ref
        return (ref.conn_id, ref.dag_id, ref.run_id, ref.task_id, ref.map_index, self.try_number, self.expires_at)

    def path(self) -> str:
        """The receiver route for this grant, every part percent-encoded."""
        return f"/webhook/{ROUTE_VERSION}/" + "/".join(quote(str(part), safe="") for part in self._parts())

    def message(self) -> bytes:
        """What the token signs: the grant as a JSON list, so no two grants collide."""
        return json.dumps([ROUTE_VERSION, *self._parts()]).encode()

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at

    def describe(self) -> str:
        return f"{self.ref.describe()} try {self.try_number} via {self.ref.conn_id}"


def grant_from_path(
    conn_id: str, dag_id: str, run_id: str, task_id: str, map_index: str, try_number: str, expires_at: str
) -> WebhookGrant | None:
    """The grant a request's path names, or ``None`` when no Airflow task instance could have these ids.

    Checked before anything else, so out-of-range numbers and oversized or unprintable ids never reach the
    database, the secrets backend or the log.
    """
    ids = (conn_id, dag_id, run_id, task_id)
    if not all(0 < len(part) <= MAX_ID_LENGTH and part.isprintable() for part in ids):
        return None
    numbers = (map_index, try_number, expires_at)
    if not all(_DECIMAL.fullmatch(part) for part in numbers):
        return None
    index, tries, expiry = (int(part) for part in numbers)
    if not (-1 <= index <= MAX_INT32 and 0 <= tries <= MAX_INT32 and expiry > 0):
        return None
    return WebhookGrant(TaskInstanceRef(conn_id, dag_id, run_id, task_id, index), tries, expiry)


def sign(secret: str, grant: WebhookGrant) -> str:
    """The header value that authenticates webhooks for ``grant``."""
    return "sha256=" + hmac.new(secret.encode(), grant.message(), hashlib.sha256).hexdigest()


#: Signs when the connection has no secret, so a request costs the same whether or not its connection exists.
_NO_SECRET = "alta-webhook-no-secret"


def signature_matches(secret: str | None, grant: WebhookGrant, header: str | None) -> bool:
    """Constant-time check of a delivered header against the expected token (never true without a secret)."""
    expected = sign(secret or _NO_SECRET, grant).encode()
    delivered = (header or "").strip().encode("utf-8", "replace")
    return hmac.compare_digest(expected, delivered) and secret is not None and bool(header)


@dataclass(frozen=True)
class WebhookSettings:
    """The ``[alta]`` configuration of the receiver."""

    enabled: bool = False
    base_url: str | None = None
    token_lifetime: float = DEFAULT_TOKEN_LIFETIME

    @classmethod
    def from_config(cls) -> WebhookSettings:
        from airflow_provider_alta._airflow.version_compat import conf

        lifetime = conf.get(CONFIG_SECTION, "webhook_token_lifetime", fallback="") or DEFAULT_TOKEN_LIFETIME
        try:
            seconds = float(lifetime)
        except ValueError:
            seconds = float("nan")  # refused by :meth:`grant`, not here: the plugin must load in every process
        return cls(
            enabled=conf.getboolean(CONFIG_SECTION, "webhook_enabled", fallback=False),
            base_url=conf.get(CONFIG_SECTION, "webhook_base_url", fallback=None) or None,
            token_lifetime=seconds,
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

    def grant(self, ref: TaskInstanceRef, try_number: int, now: float | None = None) -> WebhookGrant:
        """The grant of ``ref``'s try ``try_number``, valid for :attr:`token_lifetime` from ``now``."""
        if not self.token_lifetime > 0:
            raise AltaValidationError(
                f"[alta] webhook_token_lifetime must be a positive number of seconds, got {self.token_lifetime!r}"
            )
        issued = time.time() if now is None else now
        return WebhookGrant(ref, try_number, int(issued + self.token_lifetime))


def airflow_webhook(
    settings: WebhookSettings, secret: str | None, grant: WebhookGrant, conn_type: str | None
) -> dict[str, Any]:
    """The webhook entry that points Alta at the receiver for ``grant``."""
    url = settings.receiver_url()
    secret = check_signer(grant.ref.conn_id, secret, conn_type)
    return {"method": "POST", "url": url + grant.path(), "headers": {SIGNATURE_HEADER: sign(secret, grant)}}


def check_signer(conn_id: str, secret: str | None, conn_type: str | None) -> str:
    """``secret`` when connection ``conn_id`` can sign webhook tokens (an ``alta`` one with a secret), else a
    clear error."""
    from airflow_provider_alta._core.connection import CONN_TYPE

    if conn_type != CONN_TYPE:
        raise AltaValidationError(
            f"airflow_webhook=True needs connection {conn_id!r} to be of type {CONN_TYPE!r} (it is {conn_type!r}): "
            "the receiver only accepts tokens signed with an Alta connection's webhook_secret"
        )
    if not secret:
        raise AltaValidationError(
            f"airflow_webhook=True needs a 'webhook_secret' extra on connection {conn_id!r}: a long random "
            "string that signs the receiver's URLs"
        )
    return secret


def empty_mailbox(conn_id: str) -> dict[str, Any]:
    """What the task puts in its mailbox before invoking: reads then find a value, not a 404, and the receiver
    learns which connection's tokens may open it."""
    return {"workflow_run_id": None, "status": None, "received_at": None, "conn_id": conn_id}


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


_PROGRESS = {RunStatus.PENDING.value: 0, RunStatus.RUNNING.value: 1}


def steps_back(stored: Any, notice: dict[str, Any]) -> bool:
    """Whether ``notice`` would move the stored notice of the same run backwards.

    A run only moves forwards (PENDING, RUNNING, then one end), so an earlier status, or a second, different
    end, after the stored one is stale or forged; storing it would make the trigger spend a confirming query
    on every flip.
    """
    if not isinstance(stored, dict) or stored.get("workflow_run_id") != notice["workflow_run_id"]:
        return False
    before, after = stored.get("status"), notice["status"]
    if before not in _PROGRESS and before is not None:  # an end was stored: nothing else follows
        return after != before
    return before is not None and _PROGRESS.get(after, 2) < _PROGRESS[before]


def announces_end(notice: Any, workflow_run_id: str) -> bool:
    """Whether a mailbox notice says ``workflow_run_id`` has ended (still to be confirmed with Alta)."""
    if not isinstance(notice, dict) or notice.get("workflow_run_id") != workflow_run_id:
        return False
    try:
        return RunStatus(notice.get("status")).is_terminal
    except ValueError:
        return False
