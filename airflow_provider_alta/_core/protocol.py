"""The wire protocol of the Alta API, without I/O.

Both hooks (requests and aiohttp) build their requests and read the answers
through these functions, so every rule about the API lives here once.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from airflow_provider_alta.exceptions import (
    AltaApiError,
    AltaAuthError,
    AltaInvalidRequestError,
    AltaInvalidResponseError,
    AltaNotFoundError,
    AltaRateLimitError,
    AltaResponseTooDeepError,
    AltaServerError,
)
from airflow_provider_alta.models import WorkflowRun

INVOKE_PATH = "/v1/workflow/invoke"
QUERY_PATH = "/v1/workflow/query/result"
DEFAULT_BASE_URL = "https://altatech.ai"

#: The longest excerpt of a non-JSON error page quoted in an error message.
_EXCERPT_CHARS = 200


@dataclass(frozen=True)
class ApiRequest:
    """One call to the API: where it goes, what it carries, and whether it is safe to repeat."""

    path: str
    body: dict[str, Any]
    idempotent: bool
    workflow_run_id: str | None = None
    method: str = "POST"

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"

    @cached_property
    def payload(self) -> bytes:
        """The JSON body as sent; a wait re-sends the same query, encoded once."""
        return json.dumps(self.body, separators=(",", ":")).encode()


def invoke_request(body: dict[str, Any]) -> ApiRequest:
    """The invoke call; ``body`` comes from :func:`validation.build_invoke_body`."""
    return ApiRequest(path=INVOKE_PATH, body=body, idempotent=False)


def query_request(workflow_run_id: str) -> ApiRequest:
    """The documented query call: a POST carrying the run id in the body."""
    return ApiRequest(
        path=QUERY_PATH,
        body={"workflowRunId": workflow_run_id},
        idempotent=True,
        workflow_run_id=workflow_run_id,
    )


def request_headers(api_key: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {api_key}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }


def join_url(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path


@dataclass(frozen=True)
class RateLimitInfo:
    """What the ``X-RateLimit-*`` headers of one answer said (``None`` when absent)."""

    limit: int | None
    remaining: int | None
    reset_at: float | None  # Unix time, seconds


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimitInfo | None:
    limit = _int_header(headers, "X-RateLimit-Limit")
    remaining = _int_header(headers, "X-RateLimit-Remaining")
    reset = _int_header(headers, "X-RateLimit-Reset")
    if limit is None and remaining is None and reset is None:
        return None
    return RateLimitInfo(limit=limit, remaining=remaining, reset_at=float(reset) if reset is not None else None)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta-seconds or an HTTP date), else ``None``."""
    value = _header(headers, "Retry-After")
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None and type(headers) is dict:  # HTTP clients' header maps are case-insensitive already
        lowered = name.lower()
        for key, item in headers.items():
            if key.lower() == lowered:
                return item
    return value


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = _header(headers, name)
    if value is None:
        return None
    try:
        return int(float(value.strip()))
    except ValueError:
        return None


def parse_response(
    request: ApiRequest,
    status: int,
    headers: Mapping[str, str],
    text: str,
    *,
    now: float | None = None,
) -> WorkflowRun:
    """Turn an HTTP answer into a :class:`WorkflowRun` or raise the matching typed error."""
    if not 200 <= status < 300:
        raise error_from_response(request, status, headers, text, now=now)
    try:
        body = json.loads(text)
    except RecursionError:
        raise AltaResponseTooDeepError(
            f"Alta answered HTTP {status} with JSON nested too deeply to be read ({len(text)} characters); "
            "the workflow's output needs fewer levels of nesting",
            status=status,
            endpoint=request.endpoint,
            workflow_run_id=request.workflow_run_id or _run_id_in(text),
        ) from None
    except ValueError:
        raise AltaInvalidResponseError(
            f"Alta answered HTTP {status} with a body that is not JSON: {_excerpt(text)!r}",
            status=status,
            endpoint=request.endpoint,
            workflow_run_id=request.workflow_run_id,
        ) from None
    try:
        run = WorkflowRun.from_response(body, endpoint=request.endpoint, copy_body=False)
    except AltaInvalidResponseError as err:
        if request.workflow_run_id and not err.workflow_run_id:
            err = AltaInvalidResponseError(
                err.cause, status=status, endpoint=request.endpoint, workflow_run_id=request.workflow_run_id
            )
        raise err from None
    if request.workflow_run_id and run.workflow_run_id != request.workflow_run_id:
        raise AltaInvalidResponseError(
            f"Alta answered a query for one run with another run ({run.workflow_run_id!r})",
            status=status,
            endpoint=request.endpoint,
            workflow_run_id=request.workflow_run_id,
        )
    return run


_STATUS_ERRORS: dict[int, tuple[type[AltaApiError], str]] = {
    400: (AltaInvalidRequestError, "Alta rejected the request as invalid"),
    401: (AltaAuthError, "Alta rejected the API key (missing, wrong or revoked); check the connection's API Key"),
    403: (AltaAuthError, "The API key has no access to this workflow or run; check the connection's API Key"),
    404: (AltaNotFoundError, "Alta does not know this workflow run (wrong id, another key's run, or expired)"),
    413: (AltaInvalidRequestError, "Alta rejected the request as too large; send a smaller input"),
    422: (AltaInvalidRequestError, "Alta rejected the request as invalid"),
    429: (AltaRateLimitError, "The API key's rate limit is exhausted"),
}


#: What marks a 429 as the key's concurrency limit rather than its rate limit: its error code names it (the
#: emulator's ``CONCURRENCY_LIMIT_EXCEEDED``; Alta documents no code, so any code naming concurrency counts).
CONCURRENCY_CODE_MARK = "CONCURREN"


def is_concurrency_limit(exc: BaseException) -> bool:
    """A 429 that says the key holds as many runs as it may, not that its request quota is spent: its
    ``Retry-After`` is about starting a run, never about querying one."""
    return isinstance(exc, AltaRateLimitError) and CONCURRENCY_CODE_MARK in (exc.code or "").upper()


def error_from_response(
    request: ApiRequest,
    status: int,
    headers: Mapping[str, str],
    text: str,
    *,
    now: float | None = None,
) -> AltaApiError:
    """The typed error for a non-2xx answer, whatever its body looks like."""
    code, api_message = _documented_error(text)
    if status in _STATUS_ERRORS:
        cls, cause = _STATUS_ERRORS[status]
    elif status >= 500:
        cls, cause = AltaServerError, "Alta failed to handle the request (server error)"
    else:
        cls, cause = AltaApiError, "Alta answered with an unexpected HTTP status"
    if api_message is None and code is None and text.strip():
        api_message = _excerpt(text)
    retry_after = None
    if status in (429, 503):
        retry_after = parse_retry_after(headers, now)
        if retry_after is None and status == 429:
            info = parse_rate_limit(headers)
            if info and info.reset_at is not None:
                retry_after = max(0.0, info.reset_at - (time.time() if now is None else now))
    return cls(
        cause,
        status=status,
        code=code,
        api_message=api_message,
        endpoint=request.endpoint,
        workflow_run_id=request.workflow_run_id,
        retry_after=retry_after,
    )


def _documented_error(text: str) -> tuple[str | None, str | None]:
    """Read ``{"error": {"code", "message", "status"}}``; tolerate anything else."""
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(body, dict):
        return None, None
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        message = error.get("message")
        return (str(code) if code is not None else None, str(message) if message is not None else None)
    if isinstance(error, str):
        return None, error
    message = body.get("message")
    return None, str(message) if message is not None else None


#: ``"workflowRunId": "<id>"`` at any place of an answer that cannot be parsed as a whole.
_RUN_ID_FIELD = re.compile(r'"workflowRunId"\s*:\s*"([A-Za-z0-9._:-]{1,200})"')


def _run_id_in(text: str) -> str | None:
    """The run id of an answer too deep to parse, read from its text, so the error can name the run.

    Only the part before the run's ``input`` and ``output`` is searched: those may hold anything.
    """
    ends = [at for at in (text.find('"input"'), text.find('"output"')) if at >= 0]
    found = _RUN_ID_FIELD.search(text, 0, min(ends) if ends else len(text))
    return found.group(1) if found else None


def _excerpt(text: str) -> str:
    """A readable excerpt of an HTML or plain-text page: tags dropped, whitespace folded."""
    title = re.search(r"<title[^>]*>(.*?)</title>", text, flags=re.IGNORECASE | re.DOTALL)
    stripped = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", text, flags=re.IGNORECASE | re.DOTALL)
    stripped = re.sub(r"<[^>]+>", " ", stripped)
    folded = " ".join(stripped.split())
    if title:
        head = " ".join(title.group(1).split())
        if head and not folded.startswith(head):
            folded = f"{head}: {folded}"
    return folded[:_EXCERPT_CHARS] + ("…" if len(folded) > _EXCERPT_CHARS else "")


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
