"""The receiver's batched mailbox read (``POST /alta/mailboxes``) with FastAPI's test client, real database."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from airflow_provider_alta._webhook.contract import SIGNATURE_HEADER, TaskInstanceRef
from airflow_provider_alta._webhook.mailbox_protocol import MAX_REFS, batch_body, sign_body
from airflow_provider_alta._webhook.receiver import create_app
from tests.plugins.mailbox_support import (
    OTHER_CONN_ID,
    OTHER_SECRET,
    connections_env,
    fill_mailboxes,
    mailbox_refs,
    post_batch,
    raw_batch,
)
from tests.plugins.receiver_support import CONN_ID, SECRET


@pytest.fixture(scope="module")
def refs(airflow_db) -> list[TaskInstanceRef]:
    return mailbox_refs()


@pytest.fixture
def client(refs, monkeypatch) -> TestClient:
    for name, value in connections_env().items():
        monkeypatch.setenv(name, value)
    fill_mailboxes(refs)
    return TestClient(create_app())


def as_notices(response) -> dict[int, dict]:
    return {index: notice for index, notice in response.json()["notices"]}


def test_valid_signature_answers_the_notices_of_that_connection_only(client, refs):
    response = post_batch(client, CONN_ID, refs)
    assert response.status_code == 200
    got = as_notices(response)
    assert sorted(got) == [0, 4, 5]  # not the empty mailbox (1), another connection's (2), none (3)
    assert [got[i]["workflow_run_id"] for i in (0, 4, 5)] == ["run-a", "run-e", "run-f"]
    assert all(notice["conn_id"] == CONN_ID for notice in got.values())
    assert SECRET not in response.text and OTHER_SECRET not in response.text


def test_the_other_connection_reads_only_its_own_mailbox(client, refs):
    as_other = [TaskInstanceRef(OTHER_CONN_ID, r.dag_id, r.run_id, r.task_id, r.map_index) for r in refs]
    got = as_notices(post_batch(client, OTHER_CONN_ID, as_other, OTHER_SECRET))
    assert sorted(got) == [2] and got[2]["workflow_run_id"] == "run-c"


def test_one_connections_secret_does_not_read_through_another(client, refs):
    # Signed with the right bytes, but with the secret of the connection the body does not name.
    assert post_batch(client, OTHER_CONN_ID, refs, SECRET).status_code == 401
    assert post_batch(client, CONN_ID, refs, OTHER_SECRET).status_code == 401


@pytest.mark.parametrize("signature", [None, "", "sha256=" + "0" * 64, "sha256=abc", "not-a-signature"])
def test_missing_or_wrong_signature_is_401_without_notices(client, refs, signature):
    raw = batch_body(CONN_ID, refs)
    headers = {} if signature is None else {SIGNATURE_HEADER: signature}
    response = client.post("/mailboxes", content=raw, headers=headers)
    assert response.status_code == 401
    assert "notices" not in response.json() and "run-a" not in response.text


def test_signature_over_other_bytes_is_401(client, refs):
    raw = batch_body(CONN_ID, refs)
    signature = sign_body(SECRET, raw + b" ")
    assert client.post("/mailboxes", content=raw, headers={SIGNATURE_HEADER: signature}).status_code == 401


def test_unknown_and_secretless_connections_are_refused_alike(client, refs, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_NO_SECRET", json.dumps({"conn_type": "alta", "host": "http://x"}))
    monkeypatch.setenv(
        "AIRFLOW_CONN_HTTP_WITH_SECRET", json.dumps({"conn_type": "http", "extra": {"webhook_secret": SECRET}})
    )
    answers = [post_batch(client, conn_id, refs) for conn_id in ("no_such_conn", "alta_no_secret", "http_with_secret")]
    answers.append(post_batch(client, CONN_ID, refs, "a-wrong-secret-0123456789"))
    assert {a.status_code for a in answers} == {401}
    assert len({a.text for a in answers}) == 1  # nothing tells which connection ids exist


@pytest.mark.parametrize("skew", [-120, 120, -61])
def test_stale_or_future_issued_at_is_401(client, refs, skew):
    response = post_batch(client, CONN_ID, refs, issued_at=time.time() + skew)
    assert response.status_code == 401 and "notices" not in response.json()


def test_issued_at_within_the_allowed_skew_is_answered(client, refs):
    assert post_batch(client, CONN_ID, refs, issued_at=time.time() - 50).status_code == 200


def test_too_many_refs_is_413(client, refs):
    many = [refs[0]] * (MAX_REFS + 1)
    response = post_batch(client, CONN_ID, many)
    assert response.status_code == 413 and response.json()["result"] == "too_many_refs"


def test_as_many_refs_as_allowed_are_answered(client, refs):
    many = [TaskInstanceRef(CONN_ID, refs[0].dag_id, refs[0].run_id, "absent", i) for i in range(MAX_REFS - 1)]
    response = post_batch(client, CONN_ID, [*many, refs[0]])
    assert response.status_code == 200 and sorted(as_notices(response)) == [MAX_REFS - 1]


def test_oversized_body_is_413(client):
    huge = b'{"conn_id": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    assert (
        client.post("/mailboxes", content=huge, headers={SIGNATURE_HEADER: sign_body(SECRET, huge)}).status_code == 413
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        raw_batch(None, []),
        raw_batch("", []),
        raw_batch(CONN_ID, "refs"),
        raw_batch(CONN_ID, [["dag", "run", "task"]]),
        raw_batch(CONN_ID, [["dag", "run", "task", "0"]]),
        raw_batch(CONN_ID, [["dag", "run", "task", True]]),
        raw_batch(CONN_ID, [["dag", "run", "task", -2]]),
        raw_batch(CONN_ID, [["dag", "run\n", "task", 0]]),
        raw_batch(CONN_ID, [["d" * 251, "run", "task", 0]]),
        raw_batch(CONN_ID, [], issued_at="now"),
    ],
    ids=[
        "not-json",
        "list",
        "no-conn",
        "empty-conn",
        "refs-not-list",
        "short-ref",
        "index-text",
        "index-bool",
        "index-low",
        "unprintable-id",
        "long-id",
        "issued-at-text",
    ],
)
def test_malformed_body_is_400(client, raw):
    response = client.post("/mailboxes", content=raw, headers={SIGNATURE_HEADER: sign_body(SECRET, raw)})
    assert response.status_code == 400 and response.json()["result"] == "malformed"


@pytest.fixture
def xcom_queries() -> Iterator[list[str]]:
    """The SQL statements on the XCom table run while the block runs."""
    from airflow import settings
    from sqlalchemy import event

    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if "FROM xcom" in statement:
            seen.append(statement)

    event.listen(settings.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(settings.engine, "before_cursor_execute", record)


def test_many_refs_cost_one_sql_query(client, refs, xcom_queries):
    absent = [TaskInstanceRef(CONN_ID, refs[0].dag_id, refs[0].run_id, "absent", i) for i in range(500)]
    response = post_batch(client, CONN_ID, [*refs, *absent])
    assert response.status_code == 200 and sorted(as_notices(response)) == [0, 4, 5]
    assert len(xcom_queries) == 1, xcom_queries


def test_refusals_are_logged_quietly_and_never_the_secret(client, refs, caplog):
    caplog.set_level(logging.DEBUG, logger="airflow_provider_alta._webhook.receiver")
    for _ in range(30):
        post_batch(client, CONN_ID, refs, "a-wrong-secret-0123456789")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) <= 1  # one line counting them, at most once a minute
    assert sum("batched mailbox read" in r.getMessage() for r in caplog.records) >= 30  # each at DEBUG
    post_batch(client, CONN_ID, refs)
    assert all(SECRET not in r.getMessage() and "run-a" not in r.getMessage() for r in caplog.records)
