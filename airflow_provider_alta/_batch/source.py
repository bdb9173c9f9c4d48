"""A batch's items, read as a stream: from a list (or an upstream task's XCom), a JSON Lines or a CSV file.

Every read is a fresh pass over the input, item by item, so a file of 100,000 items never sits in memory. The
first pass (:func:`survey`) checks every item before any request, counts them, maps each key to its position and
fingerprints the whole input, so that a later try can tell the same input from a changed one.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from airflow_provider_alta._batch.location import Location
from airflow_provider_alta._core.validation import ensure_json_object
from airflow_provider_alta.exceptions import AltaValidationError

Key = str | int


@dataclass(frozen=True)
class Item:
    """One item: its position in the input, its key (the ``key_field`` value, else the position), its input."""

    index: int
    key: Key
    input: dict[str, Any]


class ItemSource:
    """Where the items come from; each iteration reads them again from the start."""

    def __init__(
        self,
        *,
        items: Iterable[Any] | None = None,
        location: Location | None = None,
        input_format: str = "jsonl",
        key_field: str | None = None,
    ) -> None:
        self._items = items
        self.location = location
        self.input_format = input_format
        self.key_field = key_field

    def describe(self) -> str:
        return self.location.uri if self.location is not None else "the items given"

    def __iter__(self) -> Iterator[Item]:
        for index, (where, value) in enumerate(self._raw()):
            item = ensure_json_object(value, f"the item at {where}")
            yield Item(index, self._key(item, index, where), item)

    def _key(self, item: dict[str, Any], index: int, where: str) -> Key:
        if self.key_field is None:
            return index
        key = item.get(self.key_field)
        if isinstance(key, bool) or not isinstance(key, (str, int)) or key == "":
            raise AltaValidationError(
                f"the item at {where} has no usable key: key_field {self.key_field!r} must hold a non-empty string "
                f"or a whole number in every item, got {key!r}"
            )
        return key

    def _raw(self) -> Iterator[tuple[str, Any]]:
        if self.location is None:
            if self._items is None or isinstance(self._items, (str, bytes, dict)):
                raise AltaValidationError(
                    f"items must be a list of input objects, got {type(self._items).__name__}; a file goes in "
                    "input_path"
                )
            yield from ((f"items[{index}]", value) for index, value in enumerate(self._items))
            return
        with self.location.fs.open(self.location.path, "rb", compression="infer") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            if self.input_format == "csv":
                yield from _csv_rows(text)
            else:
                yield from _json_lines(text)


def _json_lines(text: io.TextIOWrapper) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as err:
            raise AltaValidationError(f"input_path line {number} is not JSON ({err})") from None
        yield f"line {number}", value


def _csv_rows(text: io.TextIOWrapper) -> Iterator[tuple[str, Any]]:
    reader = csv.DictReader(text)
    for row in reader:
        where = f"line {reader.line_num}"
        if None in row:
            raise AltaValidationError(f"input_path {where} has more values than the header has columns")
        yield where, {name: value for name, value in row.items() if name is not None}


@dataclass(frozen=True)
class Survey:
    """What the first pass learned: how many items, the input's fingerprint, and each key's position (only when
    keys are a field's values; otherwise a key is its position)."""

    total: int
    fingerprint: str
    positions: dict[Key, int] | None

    def index_of(self, key: Any) -> int | None:
        if self.positions is not None:
            return self.positions.get(key)
        return key if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < self.total else None


def survey(source: ItemSource) -> Survey:
    """Check every item, count them, map the keys and fingerprint the input, before any request."""
    digest = hashlib.sha256(f"alta-batch-v1\nkey_field={source.key_field}\n".encode())
    positions: dict[Key, int] | None = {} if source.key_field is not None else None
    total = 0
    for item in source:
        digest.update(json.dumps(item.input, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
        digest.update(b"\n")
        if positions is not None:
            earlier = positions.setdefault(item.key, item.index)
            if earlier != item.index:
                raise AltaValidationError(
                    f"key_field {source.key_field!r} holds {item.key!r} in two items (positions {earlier} and "
                    f"{item.index}); every item needs its own key, as results and reruns are matched by it"
                )
        total += 1
    return Survey(total=total, fingerprint=digest.hexdigest(), positions=positions)
