"""Argument checks that run before any request is sent.

Each check raises :class:`AltaValidationError` naming the field and the fix.
Pure functions, no I/O besides reading the package's own schema file.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from airflow_provider_alta._core.json_limits import Problem, json_problem
from airflow_provider_alta.exceptions import AltaValidationError

MAX_WEBHOOKS = 5
WEBHOOK_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@lru_cache(maxsize=1)
def _invoke_request_validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(invoke_request_schema())


@lru_cache(maxsize=1)
def invoke_request_schema() -> dict[str, Any]:
    """The JSON Schema of the invoke request body, shipped in the package."""
    text = resources.files("airflow_provider_alta.schemas").joinpath("invoke_request.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def ensure_json_object(value: Any, field: str, *, for_xcom: bool = False) -> dict[str, Any]:
    """Return ``value`` if it is a dict that JSON (and with ``for_xcom``, Airflow's XCom) carries unchanged.

    The check is :func:`fidelity.json_problem`: types, finite numbers, string keys, UTF-8, depth and, for
    a value that also lives in Airflow, the XCom serde's reserved keys. Its error names the JSON path.
    """
    if not isinstance(value, dict):
        raise AltaValidationError(
            f"{field} must be a JSON object (a dict), got {type(value).__name__}; "
            f"pass the workflow's Start node parameters as a dict, e.g. {{'topic': 'News'}}"
        )
    problem = json_problem(value, field, for_xcom=for_xcom)
    if problem is not None:
        raise not_carried(problem)
    return value


def not_carried(problem: Problem) -> AltaValidationError:
    """The error for a value that cannot be sent as it is."""
    return AltaValidationError(f"{problem.path} is not JSON-serialisable unchanged: {problem.reason}; nothing was sent")


def normalize_webhooks(webhooks: Any) -> list[dict[str, Any]] | None:
    """Check the webhook list and return it with upper-case methods."""
    if webhooks is None:
        return None
    if not isinstance(webhooks, (list, tuple)):
        raise AltaValidationError(
            f"webhooks must be a list of {{'method', 'url', 'headers'}} dicts, got {type(webhooks).__name__}"
        )
    if len(webhooks) > MAX_WEBHOOKS:
        raise AltaValidationError(f"webhooks has {len(webhooks)} entries; Alta accepts at most {MAX_WEBHOOKS} per run")
    result = []
    for index, hook in enumerate(webhooks):
        where = f"webhooks[{index}]"
        if not isinstance(hook, dict):
            raise AltaValidationError(f"{where} must be a dict with 'method' and 'url', got {type(hook).__name__}")
        unknown = set(hook) - {"method", "url", "headers"}
        if unknown:
            raise AltaValidationError(
                f"{where} has unknown keys {sorted(unknown)}; allowed are 'method', 'url', 'headers'"
            )
        method = hook.get("method")
        if not isinstance(method, str) or method.upper() not in WEBHOOK_METHODS:
            raise AltaValidationError(f"{where}.method is {method!r}; use one of {', '.join(WEBHOOK_METHODS)}")
        url = hook.get("url")
        if not isinstance(url, str) or not is_absolute_http_url(url):
            raise AltaValidationError(
                f"{where}.url is {url!r}; it must be an absolute http:// or https:// URL that Alta can reach"
            )
        headers = hook.get("headers")
        if headers is not None:
            if not isinstance(headers, dict):
                raise AltaValidationError(f"{where}.headers must be a dict of strings, got {type(headers).__name__}")
            for name, value in headers.items():
                if not isinstance(name, str) or not isinstance(value, str):
                    # Never echo a header value: it is usually a secret.
                    raise AltaValidationError(
                        f"{where}.headers[{name!r}] must map a string name to a string value "
                        f"(got a {type(value).__name__} value)"
                    )
        entry: dict[str, Any] = {"method": method.upper(), "url": url}
        if headers:
            entry["headers"] = dict(headers)
        result.append(entry)
    return result


def is_absolute_http_url(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in url)


def build_invoke_body(
    input: Any,
    *,
    user_id: str | None = None,
    is_async: bool = False,
    webhooks: Any = None,
) -> dict[str, Any]:
    """Validate the invoke arguments and return the request body.

    The body is also checked against the shipped JSON Schema, so the checks
    above and the schema cannot drift apart silently.
    """
    ensure_json_object(input, "input")
    ensure_user_id(user_id)
    if not isinstance(is_async, bool):
        raise AltaValidationError(f"is_async must be True or False, got {is_async!r}")
    hooks = normalize_webhooks(webhooks)
    if hooks and not is_async:
        raise AltaValidationError(
            "webhooks are only delivered for asynchronous runs; pass is_async=True "
            "(run_async=True on the operator) or drop the webhooks"
        )
    body: dict[str, Any] = {"input": input, "isAsync": is_async}
    if user_id is not None:
        body["userId"] = user_id
    if hooks:
        body["webhook"] = hooks
    _check_against_schema(body)
    return body


def _check_against_schema(body: dict[str, Any]) -> None:
    errors = sorted(
        _invoke_request_validator().iter_errors(body),
        key=lambda e: list(e.path),
    )
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.path) or "body"
        raise AltaValidationError(f"invoke request field {where!r} is invalid: {err.message}")


def ensure_user_id(value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise AltaValidationError(f"user_id must be a non-empty string or None, got {value!r}")


def ensure_run_id(value: Any, field: str = "workflow_run_id") -> str:
    if not isinstance(value, str) or not value.strip():
        raise AltaValidationError(
            f"{field} must be a non-empty string (the workflowRunId of an Alta run), got {value!r}"
        )
    return value.strip()


def ensure_positive_number(value: Any, field: str, *, allow_none: bool = False, allow_zero: bool = False) -> Any:
    if value is None and allow_none:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise AltaValidationError(f"{field} must be a finite number {bound}, got {value!r}")
    return value


def ensure_output_format(value: Any) -> str:
    """``"value"`` (the output as it is) or ``"json"`` (the output as JSON text, for outputs XCom cannot carry)."""
    if value not in ("value", "json"):
        raise AltaValidationError(
            f"output_format must be 'value' or 'json', got {value!r}; 'json' returns the output as JSON text "
            "that downstream tasks json.loads"
        )
    return str(value)


def load_schema(schema: Any, field: str, base_dir: Path | None = None) -> dict[str, Any] | None:
    """A JSON Schema given as a dict or as a path to a ``.json`` file, checked to be valid."""
    if schema is None:
        return None
    if isinstance(schema, str):
        path = Path(schema)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            schema = json.loads(path.read_text())
        except OSError as err:
            raise AltaValidationError(f"{field}: cannot read schema file {str(path)!r} ({err.strerror})") from None
        except ValueError as err:
            raise AltaValidationError(f"{field}: schema file {str(path)!r} is not valid JSON ({err})") from None
    if not isinstance(schema, dict):
        raise AltaValidationError(
            f"{field} must be a JSON Schema (a dict) or the path of a .json file, got {type(schema).__name__}"
        )
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as err:
        raise AltaValidationError(f"{field} is not a valid JSON Schema: {err.message}") from None
    return schema


def schema_violation(schema: dict[str, Any], value: Any) -> str | None:
    """The first way ``value`` breaks ``schema`` (with its JSON path), or ``None``."""
    import jsonschema

    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    where = "$" + "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in error.absolute_path)
    return f"{where}: {error.message}"
