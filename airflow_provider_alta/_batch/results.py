"""A batch's results: one JSON Lines row per item, written in chunks (``part-00001.jsonl``, ...) under
``output_path``.

A row holds ``key``, ``status`` (``SUCCEED``, ``FAILED``, ``REFUSED`` or ``UNKNOWN``), ``output``, ``total_cost``,
``total_tokens``, ``workflow_run_id`` and ``error``. Rows wait in memory until a chunk is full (or a flush is due)
and each chunk is written whole, so memory stays bounded and every file is complete: a chunk a crash cut short
is repaired (its torn last row dropped) before the batch goes on, and its item is found again through its run id.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_alta._batch.location import Location
from airflow_provider_alta._batch.source import Key, Survey
from airflow_provider_alta._core.batch_progress import ItemStatus, Tally
from airflow_provider_alta.models import WorkflowRun

PART = re.compile(r"part-(\d{5,})\.jsonl$")
#: Rows per chunk, and the bytes after which a chunk is written early (large outputs).
CHUNK_ROWS = 1000
CHUNK_BYTES = 16 * 1024 * 1024
#: Failed keys the manifest lists, at most.
FAILED_KEYS_LISTED = 100


def result_row(
    key: Key, status: ItemStatus, *, run: WorkflowRun | None, error: str | None, workflow_run_id: str | None
) -> bytes:
    row = {
        "key": key,
        "status": status.value,
        "output": run.output if run is not None else None,
        "total_cost": run.total_cost if run is not None else None,
        "total_tokens": run.total_tokens if run is not None else None,
        "workflow_run_id": workflow_run_id,
        "error": error,
    }
    return json.dumps(row, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


class ResultWriter:
    """Buffers rows and writes them as the next chunks of ``folder``."""

    def __init__(self, folder: Location, *, next_part: int, rows: int = CHUNK_ROWS, size: int = CHUNK_BYTES) -> None:
        self.folder = folder
        self.next_part = next_part
        self.rows = rows
        self.size = size
        self.files: list[str] = []
        self._buffer: list[bytes] = []
        self._bytes = 0

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def add(self, row: bytes) -> None:
        self._buffer.append(row)
        self._bytes += len(row)
        if len(self._buffer) >= self.rows or self._bytes >= self.size:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        part = self.folder.child(f"part-{self.next_part:05d}.jsonl")
        if not self.files:
            self.folder.fs.makedirs(self.folder.path, exist_ok=True)
        with part.fs.open(part.path, "wb") as out:
            out.write(b"".join(self._buffer))
        self.files.append(part.uri)
        self.next_part += 1
        self._buffer, self._bytes = [], 0


@dataclass
class ResultsSeen:
    """What the chunks already written say: which items are done, their figures, the files."""

    done: bytearray
    tally: Tally = field(default_factory=Tally)
    failed_keys: list[Key] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    next_part: int = 1
    #: Done items by status, for the statuses a try may run again (``UNKNOWN``, and every failure on a rerun).
    by_status: dict[ItemStatus, list[int]] = field(default_factory=dict)


def read_results(folder: Location, survey: Survey) -> ResultsSeen:
    """Read every chunk; repair one cut short by a crash; rows for keys this input lacks are ignored."""
    seen = ResultsSeen(done=bytearray(survey.total))
    for location in folder.files(".jsonl"):
        found = PART.search(location.path)
        if found is None:
            continue
        seen.next_part = max(seen.next_part, int(found.group(1)) + 1)
        rows, torn = _rows(location)
        if torn:
            with location.fs.open(location.path, "wb") as out:
                out.write(
                    b"".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False).encode() + b"\n" for r in rows)
                )
        seen.files.append(location.uri)
        for row in rows:
            _count(seen, survey, row)
    return seen


def _rows(location: Location) -> tuple[list[dict[str, Any]], bool]:
    rows: list[dict[str, Any]] = []
    torn = False
    with location.fs.open(location.path, "rb") as data:
        for line in data:
            try:
                row = json.loads(line)
            except ValueError:
                torn = True
                continue
            if isinstance(row, dict) and "key" in row and "status" in row:
                rows.append(row)
    return rows, torn


def _count(seen: ResultsSeen, survey: Survey, row: dict[str, Any]) -> None:
    index = survey.index_of(row["key"])
    try:
        status = ItemStatus(row["status"])
    except ValueError:
        return
    if index is None or seen.done[index]:
        return
    seen.done[index] = 1
    seen.by_status.setdefault(status, []).append(index)
    seen.tally.add(status, _number(row.get("total_cost")), _number(row.get("total_tokens")))
    if status is not ItemStatus.SUCCEED and len(seen.failed_keys) < FAILED_KEYS_LISTED:
        seen.failed_keys.append(row["key"])


def _number(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
