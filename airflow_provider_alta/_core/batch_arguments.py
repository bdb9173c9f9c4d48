"""The batch operator's argument checks, run when the task is built and again once it is rendered.

Pure and cheap: a DAG file that imports the batch operator imports this module on every parse. Each check
raises :class:`AltaValidationError` naming the argument and the fix, before any request is sent.
"""

from __future__ import annotations

import math
from typing import Any

from airflow_provider_alta.exceptions import AltaValidationError

#: The input formats a file may hold, by the name ``input_format=`` takes.
INPUT_FORMATS = ("jsonl", "csv")
#: File name endings that tell the format when ``input_format`` is not given (compression endings are stripped).
_SUFFIX_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
_COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")


def ensure_whole_number(value: Any, field: str, *, minimum: int = 1) -> int:
    """A whole number ``>= minimum`` (``True`` is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise AltaValidationError(f"{field} must be a whole number >= {minimum}, got {value!r}")
    return value


def ensure_max_failed_items(value: Any) -> int | float | None:
    """``None`` (no limit), a count (a whole number >= 0) or a fraction of the items (a float in [0, 1])."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AltaValidationError(
            f"max_failed_items must be a count (e.g. 10), a fraction of the items (e.g. 0.05) or None, got {value!r}"
        )
    if isinstance(value, int):
        return ensure_whole_number(value, "max_failed_items", minimum=0)
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise AltaValidationError(
            f"max_failed_items as a fraction of the items must be between 0 and 1, got {value!r}; "
            "pass a whole number for a count"
        )
    return value


def failure_threshold(value: int | float | None, total: int) -> int | None:
    """The number of failed items the batch tolerates: the task fails when more fail."""
    if value is None:
        return None
    if isinstance(value, float):
        return math.floor(value * total)
    return value


def ensure_key_field(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise AltaValidationError(f"key_field must be the name of an input field (a non-empty string), got {value!r}")
    return value


def input_format_for(path: str, given: str | None) -> str:
    """The format of an input file: ``given``, else told by its name (``.jsonl``/``.ndjson``/``.csv``, compressed
    or not)."""
    if given is not None:
        if given not in INPUT_FORMATS:
            raise AltaValidationError(f"input_format must be one of {', '.join(INPUT_FORMATS)}, got {given!r}")
        return given
    name = path.lower()
    for ending in _COMPRESSIONS:
        name = name.removesuffix(ending)
    for suffix, found in _SUFFIX_FORMATS.items():
        if name.endswith(suffix):
            return found
    raise AltaValidationError(
        f"cannot tell the format of input_path {path!r} from its name; name it .jsonl or .csv, or pass "
        f"input_format ({' or '.join(repr(f) for f in INPUT_FORMATS)})"
    )


def ensure_one_source(items: Any, input_path: Any) -> None:
    """Exactly one of ``items`` and ``input_path``."""
    if (items is None) == (input_path is None):
        raise AltaValidationError(
            "pass the items either as items= (a list of input objects, or an upstream task's output) or as "
            "input_path= (a JSON Lines or CSV file), not both and not neither"
        )


def ensure_location(value: Any, field: str) -> None:
    """An ``ObjectStoragePath`` or a non-empty path or URI string."""
    if isinstance(value, str):
        if not value.strip():
            raise AltaValidationError(f"{field} must not be empty")
        return
    if hasattr(value, "fs") and hasattr(value, "path"):
        return
    raise AltaValidationError(
        f"{field} must be an ObjectStoragePath or a URI string (e.g. 'file:///data/out' or 's3://bucket/out'), "
        f"got {type(value).__name__}"
    )
