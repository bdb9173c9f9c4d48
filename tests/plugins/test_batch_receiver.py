"""The receiver's batch routes with FastAPI's test client, against the real metadata database's
``alta_batch_notice`` table: deliveries, their defences, and the batch's signed reads."""

from __future__ import annotations

import json
import logging
import time

import pytest
from fastapi.testclient import TestClient

from airflow_provider_alta._webhook.batch_contract import (
    MAX_NOTICES_PER_ANSWER,
    BatchGrant,
    notices_request_body,
    parse_notices_answer,
    sign_batch,
)
from airflow_provider_alta._webhook.batch_notice_store import BATCH_NOTICES, BatchNoticeStore, forget_created_tables
from airflow_provider_alta._webhook.contract import SIGNATURE_HEADER, TaskInstanceRef, WebhookGrant, sign
from airflow_provider_alta._webhook.mailbox_protocol import sign_body
from airflow_provider_alta._webhook.receiver import create_app
from tests.plugins.batch_support import HTTP_CONN_ID, connections_env, deliver, grant, new_batch, read, rows
from tests.plugins.mailbox_support import OTHER_CONN_ID, OTHER_SECRET
from tests.plugins.receiver_support import CONN_ID, OUTPUT_SECRET, SECRET, run_body


@pytest.fixture
def client(airflow_db, monkeypatch) -> TestClient:
    for name, value in connections_env().items():
        monkeypatch.setenv(name, value)
    return TestClient(create_app())


@pytest.fixture
def batch() -> str:
    return new_batch()


def notices(response) -> list[tuple[int, int, str, str]]:
    """``(id, item, run id, status)`` of a read's answer, parsed as the batch's reader parses it."""
    assert response.status_code == 200, response.text
    page = parse_notices_answer(response.json())
    return [(n.id, n.item, n.run.workflow_run_id, n.run.status.value) for n in page.notices]


def test_a_delivery_is_stored_with_its_item_and_read_back(client, batch):
    response = deliver(client, grant(batch, 5), run_body("run-5"))
    assert response.status_code == 200 and response.json() == {"result": "stored"}
    (row,) = rows(batch)
    assert (row["conn_id"], row["item"], row["workflow_run_id"], row["status"]) == (CONN_ID, 5, "run-5", "SUCCEED")
    assert json.loads(row["body"]) == run_body("run-5") and row["received_at"] <= time.time()
    answer = read(client, batch)
    assert notices(answer) == [(row["id"], 5, "run-5", "SUCCEED")]
    assert answer.json()["more"] is False
    assert answer.json()["notices"][0][2]["output"] == {"token": OUTPUT_SECRET}  # the run as delivered


def test_a_repeated_delivery_is_a_duplicate_and_stored_once(client, batch):
    assert deliver(client, grant(batch, 1), run_body("run-1")).json()["result"] == "stored"
    again = deliver(client, grant(batch, 1), run_body("run-1"))
    assert again.status_code == 200 and again.json()["result"] == "duplicate"
    assert len(rows(batch)) == 1


def test_another_run_of_the_same_item_is_kept_beside_the_first(client, batch):
    # A retry that invoked the item again: both runs are news to the batch.
    deliver(client, grant(batch, 1), run_body("run-1", "FAILED"))
    assert deliver(client, grant(batch, 1), run_body("run-1b")).json()["result"] == "stored"
    assert [(r["item"], r["workflow_run_id"]) for r in rows(batch)] == [(1, "run-1"), (1, "run-1b")]


def test_a_later_status_replaces_an_earlier_one_under_a_new_id_and_never_goes_back(client, batch):
    deliver(client, grant(batch, 2), run_body("run-2", "RUNNING"))
    (first,) = rows(batch)
    assert deliver(client, grant(batch, 2), run_body("run-2", "SUCCEED")).json()["result"] == "stored"
    (later,) = rows(batch)
    assert later["status"] == "SUCCEED" and later["id"] > first["id"]
    back = deliver(client, grant(batch, 2), run_body("run-2", "RUNNING"))
    assert back.status_code == 200 and back.json()["result"] == "stale"
    assert deliver(client, grant(batch, 2), run_body("run-2", "FAILED")).json()["result"] == "stale"
    assert rows(batch) == [later]


@pytest.mark.parametrize(
    "case", ["unsigned", "empty", "forged", "other-item", "other-batch", "expired", "other-secret", "single-run"]
)
def test_bad_tokens_are_401_and_store_nothing(client, batch, case):
    target = grant(batch, 5)
    signatures = {
        "unsigned": None,
        "empty": "",
        "forged": "sha256=" + "ab" * 32,
        "other-item": sign_batch(SECRET, BatchGrant(CONN_ID, batch, 6, target.expires_at)),
        "other-batch": sign_batch(SECRET, BatchGrant(CONN_ID, new_batch(), 5, target.expires_at)),
        "other-secret": sign_batch(OTHER_SECRET, target),
        "single-run": sign(SECRET, WebhookGrant(TaskInstanceRef(CONN_ID, "d", "r", "t", 5), 1, target.expires_at)),
    }
    if case == "expired":
        target = grant(batch, 5, lifetime=-1)
        response = deliver(client, target, run_body())
    else:
        response = deliver(client, target, run_body(), signature=signatures[case])
    assert response.status_code == 401 and response.json()["result"] == "unauthorized"
    assert rows(batch) == []


@pytest.mark.parametrize("conn_id", [OTHER_CONN_ID, HTTP_CONN_ID, "no_such_connection"])
def test_only_the_connection_named_by_the_grant_signs_and_only_alta_connections(client, batch, conn_id):
    # The token is good HMAC for that grant under SECRET, which only CONN_ID (an alta connection) holds here:
    # the http connection holds it too, but its type signs nothing.
    response = deliver(client, grant(batch, 1, conn_id=conn_id), run_body())
    assert response.status_code == 401 and rows(batch) == []


def test_paths_no_batch_could_have_are_404_before_any_lookup(client, batch):
    good = grant(batch, 1).path()
    for path in (good.replace(batch, batch.upper()), good.replace("/1/", "/-1/"), good.replace("/1/", "/01/")):
        response = client.post(path, content=json.dumps(run_body()), headers={SIGNATURE_HEADER: "x"})
        assert response.status_code == 404
    assert client.post(good + "/extra", content=b"{}").status_code == 404
    assert rows(batch) == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        json.dumps({"status": "SUCCEED"}).encode(),
        json.dumps(run_body(status="DONE")).encode(),
        json.dumps({**run_body(), "totalCost": "free"}).encode(),
        json.dumps(run_body(run_id="r" * 251)).encode(),
    ],
    ids=["not-json", "list", "no-run-id", "unknown-status", "bad-field", "run-id-too-long"],
)
def test_a_body_that_is_not_a_run_is_400(client, batch, body):
    response = deliver(client, grant(batch, 1), body)
    assert response.status_code == 400 and response.json()["result"] == "not_a_run"
    assert rows(batch) == []


def test_an_oversized_body_is_413_declared_or_streamed(client, batch):
    target = grant(batch, 1)
    huge = json.dumps({**run_body(), "output": "x" * (8 * 1024 * 1024)}).encode()
    assert deliver(client, target, huge).status_code == 413

    def chunks():  # no Content-Length: cut off at the first byte over the limit
        yield huge[: 4 * 1024 * 1024]
        yield huge[4 * 1024 * 1024 :]

    headers = {SIGNATURE_HEADER: sign_batch(SECRET, target)}
    assert client.post(target.path(), content=chunks(), headers=headers).status_code == 413
    # Declared too large and unsigned: refused before the signature is even looked at.
    assert client.post(target.path(), content=huge).status_code == 413
    assert rows(batch) == []


def test_reads_page_in_id_order_from_the_cursor(client, batch):
    store = BatchNoticeStore()
    count = MAX_NOTICES_PER_ANSWER + 20
    for item in range(count):
        store.deliver(grant(batch, item), run_body(f"run-{item}"))
    first = read(client, batch)
    page = notices(first)
    assert len(page) == MAX_NOTICES_PER_ANSWER and first.json()["more"] is True
    assert [item for _, item, _, _ in page] == list(range(MAX_NOTICES_PER_ANSWER))
    ids = [notice_id for notice_id, _, _, _ in page]
    assert ids == sorted(ids)
    second = read(client, batch, after=ids[-1])
    assert [item for _, item, _, _ in notices(second)] == list(range(MAX_NOTICES_PER_ANSWER, count))
    assert second.json()["more"] is False
    last = notices(second)[-1][0]
    assert notices(read(client, batch, after=last)) == [] and len(rows(batch)) == count  # reading forgets nothing


def test_forget_deletes_the_notices_the_batch_kept_and_only_those(client, batch):
    for item in range(4):
        deliver(client, grant(batch, item), run_body(f"run-{item}"))
    ids = [r["id"] for r in rows(batch)]
    # Kept: the first and the third (a row committed late sits between ids the batch has seen: it stays).
    answer = read(client, batch, forget=[ids[0], ids[2]])
    assert [item for _, item, _, _ in notices(answer)] == [1, 3]
    assert [r["id"] for r in rows(batch)] == [ids[1], ids[3]]
    # Forgetting everything leaves an empty answer.
    assert notices(read(client, batch, forget=[ids[1], ids[3]])) == [] and rows(batch) == []


@pytest.mark.parametrize("case", ["unsigned", "forged", "other-bytes", "stale", "future", "other-secret", "http"])
def test_bad_or_stale_reads_are_401_and_forget_nothing(client, batch, case):
    deliver(client, grant(batch, 1), run_body())
    (kept,) = rows(batch)
    forget = kept["id"]
    if case in ("stale", "future"):
        skew = -120 if case == "stale" else 120
        response = read(client, batch, forget=[forget], issued_at=time.time() + skew)
    elif case == "other-secret":
        response = read(client, batch, forget=[forget], secret=OTHER_SECRET)
    elif case == "http":
        response = read(client, batch, forget=[forget], conn_id=HTTP_CONN_ID)
    else:
        raw = notices_request_body(CONN_ID, batch, 0, [forget])
        signature = {"unsigned": None, "forged": "sha256=" + "0" * 64, "other-bytes": sign_body(SECRET, raw + b" ")}
        headers = {} if signature[case] is None else {SIGNATURE_HEADER: signature[case]}
        response = client.post("/batch-notices/b1", content=raw, headers=headers)
    assert response.status_code == 401 and "notices" not in response.json()
    assert "run-0001" not in response.text
    assert rows(batch) == [kept]


def test_malformed_or_oversized_reads_are_refused(client, batch):
    bad = json.dumps({"conn_id": CONN_ID, "batch_id": batch, "after": -1, "forget": [], "issued_at": 1})
    signed = {SIGNATURE_HEADER: sign_body(SECRET, bad.encode())}
    assert client.post("/batch-notices/b1", content=bad, headers=signed).status_code == 400
    huge = b'{"conn_id": "' + b"x" * 40_000 + b'"}'
    assert client.post("/batch-notices/b1", content=huge, headers={SIGNATURE_HEADER: "x"}).status_code == 413


def test_a_connection_cannot_read_or_forget_another_connections_notices(client, batch):
    deliver(client, grant(batch, 1), run_body("run-mine"))
    (mine,) = rows(batch)
    # The other connection, with its own good signature, asks for this batch and to forget all of it.
    answer = read(client, batch, forget=[mine["id"]], conn_id=OTHER_CONN_ID, secret=OTHER_SECRET)
    assert notices(answer) == [] and rows(batch) == [mine]
    # Its own token for the same batch id and item lands beside, never in place of, this batch's rows.
    theirs = deliver(client, grant(batch, 1, conn_id=OTHER_CONN_ID), run_body("run-mine"), secret=OTHER_SECRET)
    assert theirs.json()["result"] == "stored"
    assert [(n[1], n[2]) for n in notices(read(client, batch))] == [(1, "run-mine")]
    assert len(rows(batch)) == 2


def test_the_table_is_created_on_first_use(client, batch):
    from airflow.utils.session import create_session
    from sqlalchemy import inspect

    def schema() -> dict[str, list[str]] | None:
        """The table's indexes as the store's sessions see them; ``None`` without the table."""
        with create_session() as session:
            found = inspect(session.connection())
            if not found.has_table("alta_batch_notice"):
                return None
            return {index["name"]: index["column_names"] for index in found.get_indexes("alta_batch_notice")}

    with create_session() as session:
        BATCH_NOTICES.drop(session.connection(), checkfirst=True)
    forget_created_tables()
    assert schema() is None
    assert deliver(client, grant(batch, 3), run_body()).json()["result"] == "stored"
    assert schema() == {
        "idx_alta_batch_notice_batch_id": ["batch_id", "id"],
        "idx_alta_batch_notice_received_at": ["received_at"],
    }
    assert [r["item"] for r in rows(batch)] == [3]


def test_rows_older_than_the_token_lifetime_are_purged(client, batch, monkeypatch):
    store = BatchNoticeStore()
    for item in (1, 2):
        store.deliver(grant(batch, item), run_body())
    monkeypatch.setenv("AIRFLOW__ALTA__WEBHOOK_TOKEN_LIFETIME", "600")
    assert store.purge(now=time.time() + 300) == 0 and len(rows(batch)) == 2  # younger than the lifetime
    assert store.purge(now=time.time() + 601) >= 2 and rows(batch) == []
    monkeypatch.setenv("AIRFLOW__ALTA__WEBHOOK_TOKEN_LIFETIME", "nonsense")
    store.deliver(grant(batch, 3), run_body())
    assert store.purge(now=time.time() + 10**9) == 0 and len(rows(batch)) == 1  # no lifetime: nothing purged


def test_logs_name_the_batch_item_and_run_but_no_token_secret_or_output(client, batch, caplog):
    caplog.set_level(logging.DEBUG, logger="airflow_provider_alta")
    target = grant(batch, 5)
    deliver(client, target, run_body("run-logged"))
    deliver(client, target, run_body(), signature="sha256=forged")
    read(client, batch)
    ours = [r for r in caplog.records if r.name.startswith("airflow_provider_alta")]
    infos = [r.getMessage() for r in ours if r.levelno == logging.INFO]
    assert any(batch in m and "item 5" in m and "run-logged" in m and "stored" in m for m in infos)
    refusals = [r.getMessage() for r in ours if r.levelno == logging.DEBUG and "401" in r.getMessage()]
    assert refusals and not any("401" in m for m in infos)
    for secret in (SECRET, sign_batch(SECRET, target), OUTPUT_SECRET):
        assert secret not in caplog.text
