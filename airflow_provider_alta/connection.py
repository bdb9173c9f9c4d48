"""Read an Airflow connection of type ``alta`` into typed settings (no I/O)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from airflow_provider_alta.exceptions import AltaValidationError
from airflow_provider_alta.protocol import DEFAULT_BASE_URL, request_headers
from airflow_provider_alta.ratelimit import key_fingerprint
from airflow_provider_alta.retries import RetrySettings
from airflow_provider_alta.validation import ensure_positive_number

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
        cls, *, conn_id: str, host: str | None, password: str | None, extra: Any, conn_type: str | None = None
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
        return cls(
            base_url=normalize_base_url(host),
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
            conn_type=conn_type,
        )


#: The extras that hold numbers of seconds.
_NUMBERS = frozenset({"connect_timeout", "timeout", "sync_invoke_timeout", "retry_max_wait", "retry_backoff"})


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
    if isinstance(extras.get("proxies"), str):  # the form's text field holds the JSON object as text
        try:
            extras["proxies"] = json.loads(extras["proxies"])
        except ValueError:
            raise AltaValidationError(
                f'connection {conn_id!r} extra \'proxies\' is not JSON; e.g. {{"https": "http://proxy:3128"}}'
            ) from None
    return extras


def normalize_base_url(host: str | None) -> str:
    """``altatech.ai`` → ``https://altatech.ai``; empty → the public API; no trailing slash."""
    if not host:
        return DEFAULT_BASE_URL
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = f"https://{host}"
    scheme = host.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise AltaValidationError(
            f"the connection's Base URL must be an http(s) URL such as {DEFAULT_BASE_URL}, got scheme {scheme!r}"
        )
    return host
