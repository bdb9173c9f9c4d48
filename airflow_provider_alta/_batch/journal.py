"""The per-item records that keep a batch to one paid run per item: an intent before the invoke, the run id after.

Records are JSON Lines, appended in order and never rewritten, each append durable before it returns:

* ``intent``: the item's invoke is about to be sent (a run may exist from here on);
* ``run``: Alta answered with the item's run id (a later try queries that run instead of invoking);
* ``clear``: the item has no run of this batch's (its invoke provably started nothing, or the item is run
  again): invoke it when its turn comes.

Each driver writes its own files under ``journal/``, named so that sorting them sorts them in time. On this
machine's disk a driver appends to one file; elsewhere (object stores cannot append) each append is a small file
of its own, and every :data:`COMPACT_EVERY` of them are folded into one that holds what is still open. A crash
leaves at most a torn last line, which the reader skips. An item's latest record wins; a result line beats them
all (see :mod:`airflow_provider_alta._batch.state`).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from airflow_provider_alta._batch.location import Location
from airflow_provider_alta._batch.source import Key

INTENT, RUN, CLEAR = "intent", "run", "clear"
#: Append files a driver writes on an object store before folding them into one.
COMPACT_EVERY = 200


def record(event: str, index: int, key: Key, workflow_run_id: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"event": event, "index": index, "key": key, "at": round(time.time(), 3)}
    if workflow_run_id is not None:
        entry["workflow_run_id"] = workflow_run_id
    return entry


def _lines(records: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False).encode() + b"\n" for r in records)


class Journal:
    """One driver's append-only records under ``folder``."""

    def __init__(self, folder: Location) -> None:
        self.folder = folder
        self.writer = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        self._seq = 0
        self._segments: list[str] = []
        self._file: Any = None
        self._carried: list[dict[str, Any]] = []
        folder.fs.makedirs(folder.path, exist_ok=True)

    def append(self, records: list[dict[str, Any]]) -> None:
        """Write ``records``; durable when this returns."""
        if not records:
            return
        data = _lines(records)
        if self.folder.local:
            if self._file is None:
                self._file = open(self.folder.child(f"{self.writer}.jsonl").path, "ab", buffering=0)  # noqa: SIM115
            self._file.write(data)
            os.fsync(self._file.fileno())
            return
        self._write_segment(data)

    def carry(self, records: list[dict[str, Any]]) -> None:
        """Append records that every compaction keeps: they outweigh records of earlier tries' files."""
        self.append(records)
        self._carried.extend(records)

    def due_for_compaction(self) -> bool:
        return len(self._segments) >= COMPACT_EVERY

    def compact(self, open_records: list[dict[str, Any]]) -> None:
        """Fold this driver's append files into one holding ``open_records`` (every record still needed: the
        caller has written the result lines of every item that ended)."""
        if self.folder.local:
            return
        done, self._segments = self._segments, []
        self._write_segment(_lines([*self._carried, *open_records]))
        for path in done:
            self.folder.fs.rm_file(path)

    def _write_segment(self, data: bytes) -> None:
        self._seq += 1
        path = self.folder.child(f"{self.writer}-{self._seq:08d}.jsonl").path
        with self.folder.fs.open(path, "wb") as out:
            out.write(data)
        self._segments.append(path)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass(frozen=True)
class Open:
    """An item the journal holds open: its key, and its run id (``None``: an intent no answer followed)."""

    key: Key
    workflow_run_id: str | None


def read_journal(folder: Location) -> dict[int, Open]:
    """Every item's latest record, over every driver's files in time order; torn or foreign lines are skipped."""
    latest: dict[int, Open] = {}
    for location in folder.files(".jsonl"):
        with location.fs.open(location.path, "rb") as data:
            for line in data:
                try:
                    entry = json.loads(line)
                    event, index, key = entry["event"], entry["index"], entry["key"]
                except (ValueError, KeyError, TypeError):
                    continue  # a line torn by a crash
                if event == INTENT:
                    latest[index] = Open(key, None)
                elif event == RUN:
                    latest[index] = Open(key, entry.get("workflow_run_id"))
                elif event == CLEAR:
                    latest.pop(index, None)
    return latest
