"""What JSON Alta and Airflow can carry unchanged, checked before it costs anything (no I/O).

A value crosses several encoders on its way from a DAG to Alta and from Alta to a downstream task: JSON
over HTTP (UTF-8, so no lone surrogates; finite numbers; string keys), Airflow's XCom serde (which
reserves a few dunder keys for its own envelopes) and the Execution API's JSON parser (which refuses
values nested about 200 levels deep, and a deferred task's event is nested twice as deep as its
content). A value that breaks one of them fails far from its cause — after the paid run, in a
downstream task, or as an opaque server error — so the provider checks inputs before the invoke and
outputs before the XCom push, and names the JSON path of the first problem.

Every walk here is iterative: a value nested thousands of levels deep gets an answer, not a
``RecursionError``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

#: The deepest nesting of objects and arrays carried. Every supported Airflow (3.0.6 to 3.3.2) carries
#: it through XCom, a deferred task's trigger event and the Execution API, with room for their wrappers.
MAX_DEPTH = 64

#: Keys Airflow's XCom serde (3.0 to 3.3) keeps for its own envelopes: a dict holding one of these
#: cannot be pushed (``AttributeError: reserved key``).
SERDE_RESERVED_KEYS = ("__classname__", "__id__")
#: A dict holding both of these is read back as a legacy envelope: changed (``dict``) or refused.
SERDE_LEGACY_PAIR = ("__type", "__var")

_SURROGATE = re.compile("[\ud800-\udfff]")
_TEMPLATE_SYNTAX = ("{{", "{%", "{#")
_KEY_CHARS = 40
_PATH_STEPS = 12  # a longer path shows its first and last six steps


@dataclass(frozen=True)
class Problem:
    """Why a value cannot be carried, and where: ``path`` is a Python-style JSON path."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class AltaLiteral(str):
    """A string sent exactly as written, never rendered by Jinja: ``AltaLiteral("Answer {{like this}}")``.

    For prompts that contain template syntax themselves. It is a ``str``, so it validates and encodes as one.
    """

    __slots__ = ()


def has_template_syntax(text: str) -> bool:
    """Whether Jinja would change ``text``: an expression, a statement or a comment (never an :class:`AltaLiteral`)."""
    return not isinstance(text, AltaLiteral) and any(marker in text for marker in _TEMPLATE_SYNTAX)


def json_problem(value: Any, root: str, *, for_xcom: bool = False) -> Problem | None:
    """The first part of ``value`` (in document order) that JSON over HTTP, or with ``for_xcom`` Airflow's XCom,
    cannot carry.

    Checks types (dict, list, tuple, str, int, float, bool, None), finite numbers, string keys, UTF-8
    encodable strings and keys, and nesting up to :data:`MAX_DEPTH`; with ``for_xcom`` also the serde's
    reserved keys. Iterative and without copies: a large output costs one pass.
    """
    if not isinstance(value, (dict, list, tuple)):
        reason = _scalar_problem(value)
        return Problem(root, reason) if reason else None
    problem = _container_problem(value, 1, root, None, for_xcom)
    if problem is not None:
        return problem
    # One iterator per open container; a path is a linked list (step, parent), built only for containers.
    stack: list[tuple[Any, int, tuple[Any, ...] | None]] = [(_items(value), 1, None)]
    while stack:
        items, depth, path = stack[-1]
        for step, item in items:
            if isinstance(step, str) and _SURROGATE.search(step):
                return Problem(_render(root, (step, path)), _SURROGATE_REASON + " (in the key)")
            if isinstance(item, (dict, list, tuple)):
                problem = _container_problem(item, depth + 1, root, (step, path), for_xcom)
                if problem is not None:
                    return problem
                stack.append((_items(item), depth + 1, (step, path)))
                break
            reason = _scalar_problem(item)
            if reason:
                return Problem(_render(root, (step, path)), reason)
        else:
            stack.pop()
    return None


def _items(node: Any) -> Any:
    """(key, value) pairs of a dict (its keys already checked to be strings); (index, value) pairs of a list."""
    return iter(node.items()) if isinstance(node, dict) else enumerate(node)


def _container_problem(
    node: Any, depth: int, root: str, path: tuple[Any, ...] | None, for_xcom: bool
) -> Problem | None:
    if depth > MAX_DEPTH:
        return Problem(
            _render(root, path),
            f"nested deeper than {MAX_DEPTH} levels of objects and arrays, more than Airflow carries",
        )
    if isinstance(node, dict):
        for key in node:
            if not isinstance(key, str):
                return Problem(_render(root, path), f"has a non-string key {key!r}; JSON keys are strings")
        if for_xcom:
            reserved = _reserved_key(node)
            if reserved:
                return Problem(_render(root, (reserved, path)), reserved_reason(reserved))
    return None


_SURROGATE_REASON = "a string with a lone surrogate (e.g. '\\ud800'), which cannot be encoded as UTF-8"


def _scalar_problem(value: Any) -> str | None:
    if value is None or isinstance(value, (bool, int)):
        return None
    if isinstance(value, str):
        return _SURROGATE_REASON if _SURROGATE.search(value) else None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value!r} is not a JSON number"
    return (
        f"a {type(value).__name__} is not JSON; convert dates, sets, bytes and custom objects to strings, "
        "lists or numbers first"
    )


def _reserved_key(node: dict[Any, Any]) -> str | None:
    for key in SERDE_RESERVED_KEYS:
        if key in node:
            return key
    if all(key in node for key in SERDE_LEGACY_PAIR):
        return SERDE_LEGACY_PAIR[0]
    return None


def reserved_reason(key: str) -> str:
    if key in SERDE_LEGACY_PAIR:
        return (
            f"keys {SERDE_LEGACY_PAIR[0]!r} and {SERDE_LEGACY_PAIR[1]!r} together, which Airflow's XCom reads "
            "back as one of its own envelopes (the value changes or cannot be read)"
        )
    return f"key {key!r} is reserved by Airflow's XCom serialisation"


def _render(root: str, path: tuple[Any, ...] | None) -> str:
    """``root["a"][3]``: keys JSON-quoted (ASCII only, so even a surrogate prints safely); long keys and paths cut."""
    steps: list[str] = []
    while path is not None:
        step, path = path
        if isinstance(step, int):
            steps.append(f"[{step}]")
        else:
            quoted = json.dumps(step if len(step) <= _KEY_CHARS else step[:_KEY_CHARS] + "…")
            steps.append(f"[{quoted}]")
    steps.reverse()
    if len(steps) > _PATH_STEPS:
        hidden = len(steps) - _PATH_STEPS
        steps = [*steps[: _PATH_STEPS // 2], f"…{hidden} levels…", *steps[-_PATH_STEPS // 2 :]]
    return root + "".join(steps)


def as_json_text(value: Any) -> str:
    """``value`` as compact JSON text that ``json.loads`` turns back into exactly ``value``.

    UTF-8 as written, unless a lone surrogate is in it: then ASCII with ``\\uXXXX`` escapes, which carry it.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if _SURROGATE.search(text):
        text = json.dumps(value, separators=(",", ":"))
    return text


def depth_of(value: Any, limit: int) -> int:
    """The nesting depth of ``value`` (a scalar is 0), counted up to ``limit + 1`` at most, iteratively."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list, tuple)):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth) for child in children if isinstance(child, (dict, list, tuple)))
    return deepest
