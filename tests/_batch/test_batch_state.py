"""The batch's durable state on a local disk (``file://``) and on fsspec's ``memory://``: items read as streams,
the journal's two-phase records, result chunks, the manifest's fingerprint and what a later try resumes."""

from __future__ import annotations

import gzip
import json
import uuid

import fsspec
import pytest

from airflow_provider_alta._batch import journal as journal_module
from airflow_provider_alta._batch.journal import CLEAR, INTENT, RUN, Journal, read_journal, record
from airflow_provider_alta._batch.location import resolve
from airflow_provider_alta._batch.results import ResultWriter, read_results, result_row
from airflow_provider_alta._batch.source import ItemSource, survey
from airflow_provider_alta._batch.state import BatchState
from airflow_provider_alta._core.batch_progress import ItemStatus
from airflow_provider_alta.exceptions import AltaValidationError
from airflow_provider_alta.models import WorkflowRun


@pytest.fixture(params=["file", "memory"])
def folder(request, tmp_path):
    """An empty folder on a local disk, or in fsspec's in-memory file system (which cannot append: segments)."""
    if request.param == "file":
        yield resolve(f"file://{tmp_path}/out", "output_path")
        return
    path = f"memory://batch-tests/{uuid.uuid4().hex}"
    yield resolve(path, "output_path")
    fsspec.filesystem("memory").rm(path.removeprefix("memory:/"), recursive=True)


def items(n, **extra):
    return [{"topic": f"t{i}", **extra} for i in range(n)]


def test_locations_from_uris_paths_and_object_storage_paths(tmp_path):
    from airflow.sdk import ObjectStoragePath

    plain = resolve(str(tmp_path), "output_path")
    assert plain.local and plain.uri == f"file://{tmp_path}"
    assert resolve(ObjectStoragePath(f"file://{tmp_path}"), "output_path").path == str(tmp_path)
    memory = resolve("memory://bucket/x", "output_path")
    assert not memory.local and memory.uri == "memory:///bucket/x"
    with pytest.raises(AltaValidationError, match="no file system is known for nope://"):
        resolve("nope://bucket/x", "output_path")


def test_items_are_read_as_a_stream_from_json_lines_csv_and_lists(folder):
    lines = folder.child("in.jsonl.gz")
    folder.fs.makedirs(folder.path, exist_ok=True)
    with folder.fs.open(lines.path, "wb") as out:
        out.write(gzip.compress(b'{"id": "a", "topic": "x"}\n\n{"id": "b", "topic": "y"}\n'))
    jsonl = list(ItemSource(location=lines, key_field="id"))
    assert [(i.index, i.key, i.input["topic"]) for i in jsonl] == [(0, "a", "x"), (1, "b", "y")]
    table = folder.child("in.csv")
    with folder.fs.open(table.path, "wb") as out:
        out.write(b'id,topic\n7,"News, today"\n8,Markets\n')
    rows = list(ItemSource(location=table, input_format="csv", key_field="id"))
    assert rows[0].input == {"id": "7", "topic": "News, today"} and rows[1].key == "8"
    assert [i.key for i in ItemSource(items=items(3))] == [0, 1, 2]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ([{"topic": "a"}, "text"], r"the item at items\[1\] must be a JSON object"),
        ([{"id": 1}, {"id": None}], r"items\[1\] has no usable key"),
        ([{"id": 1}, {"id": 1}], r"holds 1 in two items \(positions 0 and 1\)"),
        ({"topic": "a"}, "items must be a list of input objects, got dict"),
    ],
)
def test_every_item_is_checked_before_anything_is_sent(given, message):
    with pytest.raises(AltaValidationError, match=message):
        survey(ItemSource(items=given, key_field="id" if isinstance(given, list) and "id" in given[0] else None))


def test_a_file_line_that_is_not_json_is_named(folder):
    bad = folder.child("bad.jsonl")
    folder.fs.makedirs(folder.path, exist_ok=True)
    with folder.fs.open(bad.path, "wb") as out:
        out.write(b'{"topic": "a"}\n{"topic": \n')
    with pytest.raises(AltaValidationError, match="input_path line 2 is not JSON"):
        survey(ItemSource(location=bad))


def test_the_fingerprint_tells_the_same_items_from_changed_ones():
    same = survey(ItemSource(items=[{"b": 1, "a": 2}]))
    assert same.fingerprint == survey(ItemSource(items=[{"a": 2, "b": 1}])).fingerprint
    assert same.fingerprint != survey(ItemSource(items=[{"a": 2, "b": 2}])).fingerprint
    assert same.fingerprint != survey(ItemSource(items=[{"a": 2, "b": 1}], key_field="a")).fingerprint


def test_the_journal_keeps_each_items_latest_record_and_skips_a_torn_line(folder):
    journal = Journal(folder.child("journal"))
    journal.append([record(INTENT, 0, "a"), record(INTENT, 1, "b"), record(INTENT, 2, "c")])
    journal.append([record(RUN, 0, "a", "r0"), record(CLEAR, 2, "c")])
    journal.close()
    later = Journal(folder.child("journal"))  # a later try's driver: its files sort after
    later.append([record(INTENT, 3, "d")])
    later.close()
    torn = folder.child("journal", "99999999999999999999-torn.jsonl")
    with folder.fs.open(torn.path, "wb") as out:
        out.write(b'{"event": "run", "index": 1, "key": "b", "workflow_run_id": "r1"}\n{"event": "run", "ind')
    found = read_journal(folder.child("journal"))
    assert {i: (o.key, o.workflow_run_id) for i, o in found.items()} == {
        0: ("a", "r0"),
        1: ("b", "r1"),
        3: ("d", None),
    }


def test_on_object_storage_each_append_is_a_file_and_compaction_folds_them(monkeypatch):
    monkeypatch.setattr(journal_module, "COMPACT_EVERY", 3)
    folder = resolve(f"memory://batch-tests/{uuid.uuid4().hex}", "output_path").child("journal")
    journal = Journal(folder)
    journal.carry([record(CLEAR, 9, "z")])
    journal.append([record(INTENT, 0, "a")])
    journal.append([record(RUN, 0, "a", "r0"), record(INTENT, 1, "b")])
    assert len(folder.files(".jsonl")) == 3 and journal.due_for_compaction()
    journal.compact([record(RUN, 0, "a", "r0")])
    assert len(folder.files(".jsonl")) == 1 and not journal.due_for_compaction()
    with folder.fs.open(folder.files(".jsonl")[0].path, "rb") as data:
        assert [json.loads(line)["event"] for line in data] == ["clear", "run"]  # the carried clear stays
    assert set(read_journal(folder)) == {0}


def succeeded(run_id, cost=0.5):
    body = {"workflowRunId": run_id, "status": "SUCCEED", "output": {"x": run_id}, "totalCost": cost}
    return WorkflowRun.from_response({**body, "totalTokens": 10})


def test_results_are_written_in_whole_chunks_and_read_back(folder):
    writer = ResultWriter(folder, next_part=1, rows=2)
    writer.add(result_row(0, ItemStatus.SUCCEED, run=succeeded("r0"), error=None, workflow_run_id="r0"))
    assert writer.files == [] and writer.pending == 1
    writer.add(result_row(1, ItemStatus.FAILED, run=None, error="boom", workflow_run_id="r1"))
    writer.add(result_row(2, ItemStatus.REFUSED, run=None, error="bad input", workflow_run_id=None))
    writer.flush()
    assert [f.rsplit("/", 1)[1] for f in writer.files] == ["part-00001.jsonl", "part-00002.jsonl"]
    with folder.fs.open(folder.child("part-00001.jsonl").path, "rb") as data:
        first = json.loads(data.readline())
    assert first == {
        "key": 0,
        "status": "SUCCEED",
        "output": {"x": "r0"},
        "total_cost": 0.5,
        "total_tokens": 10,
        "workflow_run_id": "r0",
        "error": None,
    }
    seen = read_results(folder, survey(ItemSource(items=items(4))))
    assert list(seen.done) == [1, 1, 1, 0] and seen.next_part == 3 and seen.failed_keys == [1, 2]
    assert (seen.tally.succeeded, seen.tally.failed, seen.tally.refused, seen.tally.cost) == (1, 1, 1, 0.5)


def test_a_chunk_cut_short_is_repaired(folder):
    folder.fs.makedirs(folder.path, exist_ok=True)
    part = folder.child("part-00001.jsonl")
    row = result_row(0, ItemStatus.SUCCEED, run=succeeded("r0"), error=None, workflow_run_id="r0")
    with folder.fs.open(part.path, "wb") as out:
        out.write(row + b'{"key": 1, "status": "SUCC')
    seen = read_results(folder, survey(ItemSource(items=items(2))))
    assert list(seen.done) == [1, 0]
    with folder.fs.open(part.path, "rb") as data:
        assert data.read() == row


def open_state(folder, given, **kwargs):
    source = ItemSource(items=given)
    state = BatchState(folder, survey(source), key_field=None, source=source.describe())
    return state, *state.open(retry_unknown_outcome=kwargs.get("retry", False), rerun_failed=kwargs.get("rerun", False))


def test_a_later_try_skips_rows_reattaches_runs_and_sets_lost_invokes_apart(folder):
    _, resume, journal = open_state(folder, items(5))
    assert not resume.resumed
    journal.append([record(INTENT, i, i) for i in range(4)] + [record(RUN, 1, 1, "r1"), record(RUN, 2, 2, "r2")])
    journal.close()
    writer = ResultWriter(folder, next_part=1)
    writer.add(result_row(2, ItemStatus.SUCCEED, run=succeeded("r2"), error=None, workflow_run_id="r2"))
    writer.flush()
    _, resume, _ = open_state(folder, items(5))
    assert resume.resumed and set(resume.reattach) == {1} and set(resume.lost) == {0, 3}
    assert [resume.skip(i) for i in range(5)] == [True, True, True, True, False]
    _, allowed, _ = open_state(folder, items(5), retry=True)
    assert [allowed.skip(i) for i in range(5)] == [False, True, True, False, False]


def test_changed_items_under_the_same_output_path_are_refused(folder):
    open_state(folder, items(3))
    with pytest.raises(AltaValidationError, match="holds the state and results of a batch over other items"):
        open_state(folder, items(4))


def test_an_output_path_holding_someone_elses_results_is_refused(folder):
    folder.fs.makedirs(folder.path, exist_ok=True)
    with folder.fs.open(folder.child("part-00001.jsonl").path, "wb") as out:
        out.write(b'{"key": 0, "status": "SUCCEED"}\n')
    with pytest.raises(AltaValidationError, match="holds result files but no batch state"):
        open_state(folder, items(1))


def test_rerun_failed_forgets_the_failed_items_runs_and_rows(folder):
    _, _, journal = open_state(folder, items(3))
    journal.append([record(RUN, i, i, f"r{i}") for i in range(3)])
    writer = ResultWriter(folder, next_part=1)
    writer.add(result_row(0, ItemStatus.SUCCEED, run=succeeded("r0"), error=None, workflow_run_id="r0"))
    writer.add(result_row(1, ItemStatus.FAILED, run=None, error="boom", workflow_run_id="r1"))
    writer.flush()
    writer.add(result_row(2, ItemStatus.UNKNOWN, run=None, error="?", workflow_run_id="r2"))
    writer.flush()
    _, resume, _ = open_state(folder, items(3), rerun=True)
    assert resume.rerun == 2 and resume.reattach == {} and resume.lost == {}
    assert [resume.skip(i) for i in range(3)] == [True, False, False]
    assert [f.rsplit("/", 1)[1] for f in resume.seen.files] == ["part-00001.jsonl"]
    assert resume.seen.tally.done == 1 and resume.seen.next_part == 2
