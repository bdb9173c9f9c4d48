"""The signed read of many webhook mailboxes, as bytes: what the reader sends and the receiver accepts (pure).

(The receiver answering it over HTTP against a real database: tests/plugins/test_mailbox_batch.py.)
"""

from __future__ import annotations

import json

import pytest

from airflow_provider_alta._webhook.contract import MAX_INT32, TaskInstanceRef
from airflow_provider_alta._webhook.mailbox_protocol import (
    MAX_CLOCK_SKEW,
    MAX_REFS,
    BatchRefused,
    batch_body,
    body_signature_matches,
    parse_answer,
    parse_batch,
    sign_body,
)

REFS = [TaskInstanceRef("alta_x", "d", "manual__1", "t", -1), TaskInstanceRef("alta_x", "d", "manual__1", "m", 3)]


def test_what_the_reader_sends_is_what_the_receiver_reads():
    body = batch_body("alta_x", REFS, now=1_700_000_000.9)
    batch = parse_batch(body)
    assert (batch.conn_id, batch.issued_at, batch.refs) == ("alta_x", 1_700_000_000.0, tuple(REFS))
    assert batch.fresh(now=1_700_000_000 + MAX_CLOCK_SKEW) and not batch.fresh(now=1_700_000_000 + MAX_CLOCK_SKEW + 1)
    assert not batch.fresh(now=1_700_000_000 - MAX_CLOCK_SKEW - 1)


def test_the_signature_covers_the_exact_bytes_and_needs_a_secret():
    body = batch_body("alta_x", REFS, now=1_700_000_000)
    header = sign_body("whs-secret", body)
    assert body_signature_matches("whs-secret", body, header)
    assert not body_signature_matches("whs-secret", body.replace(b'"t"', b'"u"'), header)
    assert not body_signature_matches("other-secret", body, header)
    assert not body_signature_matches(None, body, sign_body("alta-mailboxes-no-secret", body))
    assert not body_signature_matches("whs-secret", body, None)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        json.dumps({"conn_id": "", "issued_at": 1, "refs": []}).encode(),
        json.dumps({"conn_id": "alta_x", "issued_at": True, "refs": []}).encode(),
        json.dumps({"conn_id": "alta_x", "issued_at": 1, "refs": {}}).encode(),
        json.dumps({"conn_id": "alta_x", "issued_at": 1, "refs": [["d", "r", "t"]]}).encode(),
        json.dumps({"conn_id": "alta_x", "issued_at": 1, "refs": [["d", "r", "t\n", -1]]}).encode(),
        json.dumps({"conn_id": "alta_x", "issued_at": 1, "refs": [["d", "r", "t", -2]]}).encode(),
        json.dumps({"conn_id": "alta_x", "issued_at": 1, "refs": [["d", "r", "t", MAX_INT32 + 1]]}).encode(),
        b"[" * 100_000,
    ],
)
def test_anything_but_a_batched_read_is_refused_as_malformed(body):
    with pytest.raises(BatchRefused) as refused:
        parse_batch(body)
    assert (refused.value.status, refused.value.result) == (400, "malformed")


def test_too_many_refs_are_refused_before_any_is_read():
    refs = [["d", "r", "t", index] for index in range(MAX_REFS + 1)]
    refs[0] = "not even a ref"
    with pytest.raises(BatchRefused) as refused:
        parse_batch(json.dumps({"conn_id": "alta_x", "issued_at": 1, "refs": refs}).encode())
    assert (refused.value.status, refused.value.result) == (413, "too_many_refs")


def test_an_answer_names_only_refs_it_was_asked_about():
    notice = {"workflow_run_id": "r-1", "status": "SUCCEED"}
    assert parse_answer({"notices": [[1, notice]]}, count=2) == {1: notice}
    assert parse_answer({"notices": []}, count=2) == {}
    for bad in ({}, {"notices": [[2, notice]]}, {"notices": [[True, notice]]}, {"notices": [[0, "x"]]}, []):
        with pytest.raises(ValueError):
            parse_answer(bad, count=2)
