"""Where a batch stands under its ``output_path``: the manifest, the journal and the results, read together.

``_alta_batch/manifest.json`` names the input by its fingerprint: a try (a retry, a clear) over the same input
resumes, one over a changed input is refused with a clear error instead of mixing two batches' results. What
each item needs follows from what was written, the result row first:

* a result row: done, skipped (unless ``rerun_failed`` and the row is not ``SUCCEED``);
* a run id in the journal: the run exists, paid; the batch queries it, never invokes the item again;
* an intent and no run id: a try was lost while that invoke was open, so a run may exist that nobody can find;
  the item ends ``UNKNOWN`` unless ``retry_on_unknown_outcome=True`` lets it be invoked again;
* nothing: the item is invoked when its turn comes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from airflow_provider_alta._batch.journal import CLEAR, Journal, Open, read_journal, record
from airflow_provider_alta._batch.location import Location
from airflow_provider_alta._batch.results import PART, ResultsSeen, read_results
from airflow_provider_alta._batch.source import Survey
from airflow_provider_alta._core.batch_progress import ItemStatus, Tally
from airflow_provider_alta.exceptions import AltaValidationError

STATE_FOLDER = "_alta_batch"
MANIFEST = "manifest.json"
FORMAT = "alta-batch/1"


@dataclass
class Resume:
    """What this try finds done and open."""

    seen: ResultsSeen
    #: Runs earlier tries started and recorded: queried, never invoked again.
    reattach: dict[int, Open] = field(default_factory=dict)
    #: Intents no answer followed (a lost try): ``UNKNOWN``, or invoked again when allowed.
    lost: dict[int, Open] = field(default_factory=dict)
    retry_lost: bool = False
    #: Items run again on ``rerun_failed`` (their rows were removed).
    rerun: int = 0

    @property
    def resumed(self) -> bool:
        return bool(self.seen.files or self.reattach or self.lost)

    def skip(self, index: int) -> bool:
        """Whether reading the input may pass this item by: done, or already in hand."""
        return bool(self.seen.done[index]) or index in self.reattach or (index in self.lost and not self.retry_lost)


class BatchState:
    """The state of one batch under ``output``."""

    def __init__(self, output: Location, survey: Survey, *, key_field: str | None, source: str) -> None:
        self.output = output
        self.survey = survey
        self.key_field = key_field
        self.source = source
        self.folder = output.child(STATE_FOLDER)
        self.manifest = self.folder.child(MANIFEST)
        self.journal_folder = self.folder.child("journal")
        #: What earlier tries sent as metrics (their manifest says so; a try killed before it wrote its manifest
        #: sent nothing, so the next try sends that share too).
        self.metrics_sent = Tally()

    def open(self, *, retry_unknown_outcome: bool, rerun_failed: bool) -> tuple[Resume, Journal]:
        """Check the manifest (writing it on a first try), read what earlier tries left, start this try's journal."""
        self._check_manifest()
        seen = read_results(self.output, self.survey)
        journal = Journal(self.journal_folder)
        rerun = self._clear_failures(seen, journal) if rerun_failed else 0
        resume = Resume(seen=seen, retry_lost=retry_unknown_outcome, rerun=rerun)
        for index, entry in read_journal(self.journal_folder).items():
            if index >= self.survey.total or seen.done[index]:
                continue
            (resume.reattach if entry.workflow_run_id else resume.lost)[index] = entry
        return resume, journal

    def _check_manifest(self) -> None:
        if self.manifest.exists():
            with self.manifest.fs.open(self.manifest.path, "rb") as data:
                found = json.load(data)
            sent = found.get("metrics_sent")
            if isinstance(sent, dict):
                self.metrics_sent = Tally(**{k: v for k, v in sent.items() if k in _SENT_FIELDS})
            if found.get("fingerprint") != self.survey.fingerprint:
                raise AltaValidationError(
                    f"output_path {self.output.uri} holds the state and results of a batch over other items "
                    f"({found.get('total')} items from {found.get('input')}, fingerprint "
                    f"{str(found.get('fingerprint'))[:12]}; these {self.survey.total} items from {self.source} have "
                    f"fingerprint {self.survey.fingerprint[:12]}); nothing was sent. Give this batch its own "
                    "output_path (e.g. one per DAG run, with {{ ds }} in it), or delete that folder to start over"
                )
            return
        if any(PART.search(location.path) for location in self.output.files(".jsonl")):
            raise AltaValidationError(
                f"output_path {self.output.uri} holds result files but no batch state ({STATE_FOLDER}/{MANIFEST}); "
                "nothing was sent. Point output_path at a folder of its own"
            )
        self.write_manifest(complete=False)

    def write_manifest(
        self, *, complete: bool, summary: dict[str, Any] | None = None, metrics_sent: Tally | None = None
    ) -> None:
        sent = metrics_sent or self.metrics_sent
        manifest = {
            "format": FORMAT,
            "fingerprint": self.survey.fingerprint,
            "total": self.survey.total,
            "key_field": self.key_field,
            "input": self.source,
            "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "complete": complete,
            "summary": summary,
            "metrics_sent": {name: getattr(sent, name) for name in _SENT_FIELDS},
        }
        self.folder.fs.makedirs(self.folder.path, exist_ok=True)
        with self.manifest.fs.open(self.manifest.path, "wb") as out:
            out.write(json.dumps(manifest, indent=1, ensure_ascii=False).encode())

    def _clear_failures(self, seen: ResultsSeen, journal: Journal) -> int:
        """``rerun_failed``: the failed items' runs are forgotten (``clear`` records first), then their rows go."""
        failed = {i for status, indexes in seen.by_status.items() if status is not ItemStatus.SUCCEED for i in indexes}
        if not failed:
            return 0
        parts = [location for location in self.output.files(".jsonl") if PART.search(location.path)]
        dropped = {location.path: _without(location, self.survey, failed) for location in parts}
        clears = [record(CLEAR, index, key) for _, gone in dropped.values() for index, key in gone]
        # The clear records are durable before the rows go (a crash between leaves the rows, to be cleared again),
        # and every compaction of this try's journal carries them.
        journal.carry(clears)
        for location in parts:
            kept, gone = dropped[location.path]
            if not gone:
                continue
            if kept:
                with location.fs.open(location.path, "wb") as out:
                    out.write(b"".join(kept))
            else:
                location.fs.rm_file(location.path)
        refreshed = read_results(self.output, self.survey)
        for name in _SENT_FIELDS:  # the rows gone were sent: what is sent from now on is counted from without them
            gone = getattr(seen.tally, name) - getattr(refreshed.tally, name)
            setattr(self.metrics_sent, name, getattr(self.metrics_sent, name) - gone)
        seen.__dict__.update(refreshed.__dict__)
        return len(clears)


_SENT_FIELDS = ("succeeded", "failed", "refused", "unknown", "cost", "tokens")


def _without(location: Location, survey: Survey, failed: set[int]) -> tuple[list[bytes], list[tuple[int, Any]]]:
    kept: list[bytes] = []
    dropped: list[tuple[int, Any]] = []
    with location.fs.open(location.path, "rb") as data:
        for line in data:
            try:
                row = json.loads(line)
                index = survey.index_of(row["key"])
            except (ValueError, KeyError, TypeError):
                continue
            if index in failed:
                dropped.append((index, row["key"]))
            else:
                kept.append(line)
    return kept, dropped
