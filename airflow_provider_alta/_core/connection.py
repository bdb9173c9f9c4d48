"""Read an Airflow connection of type ``alta`` into typed settings (no I/O)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from airflow_provider_alta._core.protocol import DEFAULT_BASE_URL, request_headers
from airflow_provider_alta._core.ratelimit import key_fingerprint
from airflow_provider_alta._core.request_retry import RetrySettings
from airflow_provider_alta._core.validation import ensure_positive_number
from airflow_provider_alta.exceptions import AltaValidationError

#: The connection type of Alta connections (the provider info declares it; only these sign webhooks).
CONN_TYPE = "alta"
#: Connection extras the provider reads, with their defaults. Documented in the README.
EXTRA_DEFAULTS: dict[str, Any] = {
    "connect_timeout": 10.0,
    "timeout": 60.0,
    "sync_invoke_timeout": 900.0,
    "verify": True,
    "proxies": None,
    "max_retries": 4,
    "retry_max_wait": 120.0,
    "retry_backoff": 1.0,
    "webhook_secret": None,
    "run_url_template": None,
}


@dataclass(frozen=True)
class AltaConnectionConfig:
    """Everything a hook needs to talk to Alta. ``repr`` never shows the key."""

    base_url: str
    api_key: str = field(repr=False)
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    sync_invoke_timeout: float = 900.0
    verify: bool | str = True
    proxies: dict[str, str] | None = None
    retry: RetrySettings = field(default_factory=RetrySettings)
    webhook_secret: str | None = field(default=None, repr=False)
    #: The address of a run in Alta's dashboard, with ``{workflow_run_id}`` in it (the task's "Alta run" link).
    run_url_template: str | None = None
    #: The connection's type as Airflow holds it: the webhook receiver only trusts :data:`CONN_TYPE`.
    conn_type: str | None = None

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.base_url, self.api_key)

    @cached_property
    def headers(self) -> dict[str, str]:
        """The request headers, built once; they carry the key, so they are never logged."""
        return request_headers(self.api_key)

    @property
    def proxy_url(self) -> str | None:
        """The one proxy aiohttp can use (it takes a single URL): the https one, else the http one."""
        proxies = self.proxies or {}
        return proxies.get("https") or proxies.get("http")

    @classmethod
    def from_parts(
        cls,
        *,
        conn_id: str,
        host: str | None,
        password: str | None,
        extra: Any,
        port: int | None = None,
        schema: str | None = None,
        conn_type: str | None = None,
    ) -> AltaConnectionConfig:
        extras = _extras(conn_id, extra)
        unknown = set(extras) - set(EXTRA_DEFAULTS)
        if unknown:
            raise AltaValidationError(
                f"connection {conn_id!r} has unknown extras {sorted(unknown)}; known ones are {sorted(EXTRA_DEFAULTS)}"
            )
        if not password:
            raise AltaValidationError(
                f"connection {conn_id!r} has no API key; put the key from Alta's dashboard in its "
                "password field ('API Key' in the UI)"
            )
        merged = {**EXTRA_DEFAULTS, **extras}
        verify = merged["verify"]
        if isinstance(verify, str) and verify.lower() in ("true", "false"):
            verify = verify.lower() == "true"
        if not isinstance(verify, (bool, str)):
            raise AltaValidationError(
                f"connection extra 'verify' must be true, false or a CA bundle path, got {verify!r}"
            )
        proxies = merged["proxies"]
        if proxies is not None and (
            not isinstance(proxies, dict) or not all(isinstance(v, str) for v in proxies.values())
        ):
            raise AltaValidationError(
                "connection extra 'proxies' must map 'http'/'https' to proxy URLs, "
                'e.g. {"https": "http://proxy:3128"}'
            )
        webhook_secret = merged["webhook_secret"]
        if webhook_secret is not None and (not isinstance(webhook_secret, str) or len(webhook_secret) < 16):
            raise AltaValidationError(
                "connection extra 'webhook_secret' must be a random string of at least 16 characters"
            )
        run_url_template = merged["run_url_template"]
        if run_url_template is not None and (
            not isinstance(run_url_template, str)
            or not run_url_template.startswith(("https://", "http://"))
            or "{workflow_run_id}" not in run_url_template
        ):
            raise AltaValidationError(
                "connection extra 'run_url_template' must be an http(s) URL with {workflow_run_id} in it, "
                "e.g. https://app.example/runs/{workflow_run_id}"
            )
        if run_url_template is not None and password in run_url_template:
            raise AltaValidationError(
                "connection extra 'run_url_template' contains the API key; a link is shown to every user "
                "who can see the task, so it must hold no secret"
            )
        return cls(
            base_url=normalize_base_url(host, port=port, schema=schema),
            api_key=password,
            connect_timeout=float(
                ensure_positive_number(merged["connect_timeout"], "connection extra 'connect_timeout'")
            ),
            read_timeout=float(ensure_positive_number(merged["timeout"], "connection extra 'timeout'")),
            sync_invoke_timeout=float(
                ensure_positive_number(merged["sync_invoke_timeout"], "connection extra 'sync_invoke_timeout'")
            ),
            verify=verify,
            proxies=proxies or None,
            retry=RetrySettings.from_extras(merged),
            webhook_secret=webhook_secret,
            run_url_template=run_url_template,
            conn_type=conn_type,
        )


#: The extras that hold numbers of seconds.
_NUMBERS = frozenset({"connect_timeout", "timeout", "sync_invoke_timeout", "retry_max_wait", "retry_backoff"})


def webhook_secret_of(conn_id: str, extra: Any) -> str | None:
    """The ``webhook_secret`` in a connection's raw extras (the JSON text Airflow stores), or ``None``.

    Read from the raw text rather than ``Connection.extra_dejson``, which masks every extra whose name says
    "secret" by a message to the triggerer's supervisor: Airflow 3.0's channel refuses that from the event loop.
    """
    secret = _extras(conn_id, extra).get("webhook_secret")
    return secret if isinstance(secret, str) and secret else None


def _extras(conn_id: str, extra: Any) -> dict[str, Any]:
    if extra in (None, ""):
        return {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError:
            raise AltaValidationError(f"connection {conn_id!r} has extras that are not valid JSON") from None
    if not isinstance(extra, dict):
        raise AltaValidationError(f"connection {conn_id!r} extras must be a JSON object")
    # The connection form saves a field left empty as null or "": that means "use the default".
    extras = {name: value for name, value in extra.items() if value is not None and value != ""}
    for name in _NUMBERS & extras.keys():  # Airflow 3.0/3.1's form has no decimal field: numbers come as text
        if isinstance(extras[name], str):
            try:
                extras[name] = float(extras[name])
            except ValueError:
                raise AltaValidationError(
                    f"connection {conn_id!r} extra {name!r} must be a number, got {extras[name]!r}"
                ) from None
    retries = extras.get("max_retries")
    if isinstance(retries, str) and retries.strip().isdigit():  # a URI's query string holds text: ?max_retries=0
        extras["max_retries"] = int(retries)
    if isinstance(extras.get("proxies"), str):  # the form's text field holds the JSON object as text
        try:
            extras["proxies"] = json.loads(extras["proxies"])
        except ValueError:
            raise AltaValidationError(
                f'connection {conn_id!r} extra \'proxies\' is not JSON; e.g. {{"https": "http://proxy:3128"}}'
            ) from None
    return extras


#: Hosts served over plain HTTP when the connection names no scheme: loopback, where the emulator and local
#: proxies listen and TLS is rare. Every other host defaults to https.
_LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]")


def normalize_base_url(host: str | None, *, port: int | None = None, schema: str | None = None) -> str:
    """The base URL a connection means, from every way Airflow lets one be written.

    * ``https://altatech.ai`` in the host field (the form's "Base URL"): as given;
    * a URI such as ``alta://:KEY@127.0.0.1:8765``: Airflow splits it into host and port, both kept;
    * a host without a scheme: ``https``, except on loopback (``localhost``, ``127.0.0.1``), where ``http``;
    * the schema field (``alta://:KEY@host:443/https``), when set to ``http`` or ``https``, is the scheme.

    A port or scheme given twice with different values is an error, never a silent choice; so is a key
    written into the URL instead of the password field.
    """
    from urllib.parse import urlsplit

    schema = (schema or "").strip().lower() or None
    if schema is not None and schema not in ("http", "https"):
        raise AltaValidationError(
            f"the connection's schema field must be empty, 'http' or 'https', got {schema!r}; put the Base URL "
            f"in the host field, e.g. {DEFAULT_BASE_URL}"
        )
    host = (host or "").strip().rstrip("/")
    if not host:
        if port is not None or schema is not None:
            raise AltaValidationError("the connection has a port or schema but no host; set the Base URL (host)")
        return DEFAULT_BASE_URL
    if "://" in host:
        scheme = host.split("://", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise AltaValidationError(
                f"the connection's Base URL must be an http(s) URL such as {DEFAULT_BASE_URL}, got scheme {scheme!r}"
            )
        if schema is not None and schema != scheme:
            raise AltaValidationError(
                f"the connection's host says {scheme}:// but its schema field says {schema!r}; keep one of them"
            )
    else:
        scheme = schema or ("http" if _hostname(host) in _LOOPBACK else "https")
        host = f"{scheme}://{host}"
    parts = urlsplit(host)
    if "@" in parts.netloc:
        raise AltaValidationError(
            "the connection's Base URL carries credentials; put the API key in the password field ('API Key')"
        )
    try:
        url_port = parts.port
    except ValueError:
        raise AltaValidationError(f"the connection's Base URL has an invalid port: {host!r}") from None
    if port is not None:
        if url_port is not None and url_port != int(port):
            raise AltaValidationError(
                f"the connection's host says port {url_port} but its port field says {port}; keep one of them"
            )
        if url_port is None:
            netloc = f"{parts.netloc}:{int(port)}"
            host = f"{parts.scheme}://{netloc}{parts.path}"
    return f"{scheme}://{host.split('://', 1)[1]}"


def _hostname(host: str) -> str:
    """The host name of ``host[:port][/path]`` (no scheme), lower-cased."""
    name = host.split("/", 1)[0]
    if name.startswith("["):
        return name.split("]", 1)[0] + "]"
    return name.rsplit(":", 1)[0].lower() if name.count(":") == 1 else name.lower()
