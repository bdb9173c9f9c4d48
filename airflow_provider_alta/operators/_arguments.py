"""The operator's arguments, checked before any request: when the DAG file is parsed, as far as they are known then;
all of them once Airflow has rendered them; and the invoke body itself just before it is sent.

A value Airflow will still replace (a template, an XComArg) is checked once rendered; everything else fails the
DAG's import with a message naming the argument and the fix. Imported with the operator on every parse: what needs
Airflow or the connection is imported when it runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from airflow_provider_alta._core.json_limits import MAX_DEPTH, Problem, depth_of, has_template_syntax, json_problem
from airflow_provider_alta._core.validation import (
    MAX_WEBHOOKS,
    build_invoke_body,
    ensure_json_object,
    ensure_positive_number,
    ensure_user_id,
    load_schema,
    normalize_webhooks,
    not_carried,
    schema_violation,
)
from airflow_provider_alta.exceptions import AltaValidationError

#: The operator's switches: each must be ``True`` or ``False``.
FLAGS = (
    "run_async",
    "wait_for_completion",
    "deferrable",
    "durable",
    "limits_warn_only",
    "airflow_webhook",
    "duration_aware",
    "retry_on_unknown_outcome",
    "end_in_triggerer",
)
#: Every setting :func:`check_settings` reads, by the operator's argument name.
SETTINGS = (*FLAGS, "webhook_fallback_interval", "webhook_check_interval", "timeout", "max_cost", "max_tokens")


class RunArguments(Protocol):
    """The operator's templated arguments, as these checks read them (the operator is one)."""

    input: Any
    webhooks: Any
    user_id: Any
    input_schema: Any
    output_schema: Any
    airflow_webhook: bool

    @property
    def asynchronous(self) -> bool: ...

    @property
    def _schema_dir(self) -> Path | None: ...


def is_unrendered(value: Any) -> bool:
    """A value Airflow will still replace before ``execute``: a template or XComArg, at any depth.

    Iterative, so an input nested thousands of levels deep reaches validation (and its clear error) instead of
    failing the DAG's import with a ``RecursionError``.
    """
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if has_template_syntax(node):
                return True
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
        elif type(node).__name__.endswith("XComArg") or hasattr(node, "resolve"):
            return True
    return False


def describe_mode(run_async: bool, deferrable: bool, wait_for_completion: bool) -> str:
    """How the task invokes and waits, as its log says it."""
    if not wait_for_completion:
        return "async, not waiting"
    if deferrable:
        return "async, deferred to the triggerer"
    return "async, waiting in the worker" if run_async else "synchronous"


def check_settings(settings: Mapping[str, Any]) -> None:
    """The operator's settings (its arguments that are never templated, by name) are in range and go together."""
    for name in FLAGS:
        if not isinstance(settings[name], bool):
            raise AltaValidationError(f"{name} must be True or False, got {settings[name]!r}")
    if settings["deferrable"] and not settings["wait_for_completion"]:
        raise AltaValidationError(
            "deferrable=True needs wait_for_completion=True; to start a run and wait elsewhere, use "
            "wait_for_completion=False here and a deferrable AltaWorkflowRunSensor downstream"
        )
    if settings["airflow_webhook"] and not settings["deferrable"]:
        raise AltaValidationError(
            "airflow_webhook=True needs deferrable=True: the triggerer is what the webhook wakes up"
        )
    ensure_positive_number(settings["webhook_fallback_interval"], "webhook_fallback_interval")
    ensure_positive_number(settings["webhook_check_interval"], "webhook_check_interval")
    ensure_positive_number(settings["timeout"], "timeout", allow_none=True)
    ensure_positive_number(settings["max_cost"], "max_cost", allow_none=True, allow_zero=True)
    ensure_positive_number(settings["max_tokens"], "max_tokens", allow_none=True, allow_zero=True)


def checked_input(value: Any, *, rendered: bool) -> Any:
    """The input, checked when it is known: a JSON object string becomes the dict it holds.

    An unrendered input too deeply nested fails already: rendering keeps the nesting (and Airflow's renderer
    recurses).
    """
    if not rendered and is_unrendered(value):
        if depth_of(value, MAX_DEPTH) > MAX_DEPTH:
            raise not_carried(json_problem(value, "input") or Problem("input", "nested too deeply"))
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except RecursionError:
            raise AltaValidationError(
                f"input is a JSON string nested too deeply to read; at most {MAX_DEPTH} levels are carried"
            ) from None
        except ValueError:
            raise AltaValidationError(
                "input is a string that is not JSON; pass a dict or a JSON object string"
            ) from None
    ensure_json_object(value, "input", for_xcom=True)
    return value


def check_values(args: RunArguments, *, rendered: bool) -> None:
    """Check every templated argument that is known (``rendered``: all of them); a JSON input string is read."""

    def known(value: Any) -> bool:
        return rendered or not is_unrendered(value)

    args.input = checked_input(args.input, rendered=rendered)
    if args.webhooks is not None and known(args.webhooks):
        _check_webhooks(args.webhooks, asynchronous=args.asynchronous, airflow_webhook=args.airflow_webhook)
    for name, schema in (("input_schema", args.input_schema), ("output_schema", args.output_schema)):
        if known(schema):
            load_schema(schema, name, args._schema_dir)
    if known(args.user_id):
        ensure_user_id(args.user_id)


def _check_webhooks(webhooks: Any, *, asynchronous: bool, airflow_webhook: bool) -> None:
    if not asynchronous:
        raise AltaValidationError(
            "webhooks are only delivered for asynchronous runs; set run_async=True, deferrable=True "
            "or wait_for_completion=False"
        )
    hooks = normalize_webhooks(webhooks) or []
    if airflow_webhook and len(hooks) >= MAX_WEBHOOKS:
        raise AltaValidationError(
            f"webhooks has {len(hooks)} entries and airflow_webhook=True adds one; Alta accepts at most {MAX_WEBHOOKS}"
        )


def checked_invoke(
    args: RunArguments, webhooks: Any, receiver: Callable[[], dict[str, Any]] | None = None
) -> list[dict[str, Any]] | None:
    """The last checks, every argument rendered: all of them again, the input against ``input_schema``, the invoke
    body itself. Returns the webhooks to send: ``webhooks``, plus the one ``receiver`` makes (``airflow_webhook``)
    once the input has passed."""
    check_values(args, rendered=True)
    schema = load_schema(args.input_schema, "input_schema", args._schema_dir)
    if schema is not None:
        problem = schema_violation(schema, args.input)
        if problem:
            raise AltaValidationError(f"input does not match input_schema at {problem}; nothing was sent")
    if receiver is not None:
        webhooks = [*(normalize_webhooks(webhooks) or []), receiver()]
    build_invoke_body(args.input, user_id=args.user_id, is_async=args.asynchronous, webhooks=webhooks)
    return webhooks


def masked_webhooks(webhooks: Any) -> Any:
    """Mask every webhook header value in Airflow's logs, and return ``webhooks`` with those values replaced by the
    mask (other shapes are left for validation).

    Airflow 3.0 stores (and logs) rendered fields unredacted: it is handed the masked copy, and the invoke uses the
    values the operator keeps.
    """
    from airflow.sdk.log import mask_secret

    for hook in webhooks or []:
        if isinstance(hook, dict) and isinstance(hook.get("headers"), dict):
            for value in hook["headers"].values():
                if isinstance(value, str) and value:
                    mask_secret(value)
    if not isinstance(webhooks, list):
        return webhooks
    return [
        {**hook, "headers": {name: "***" for name in hook["headers"]}}
        if isinstance(hook, dict) and isinstance(hook.get("headers"), dict)
        else hook
        for hook in webhooks
    ]
