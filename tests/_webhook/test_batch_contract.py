"""A batch's webhook grants, tokens and signed reads, as values and bytes (pure).

(The receiver answering them over HTTP against a real database: tests/plugins/test_batch_receiver.py.)
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from urllib.parse import unquote

import pytest

from airflow_provider_alta._webhook.batch_contract import (
    BATCH_DOMAIN,
    BATCH_NOTICES_ROUTE,
    BATCH_ROUTE,
    MAX_FORGET,
    MAX_ITEM,
    BatchGrant,
    batch_grant,
    batch_grant_from_path,
    batch_id_of,
    batch_signature_matches,
    batch_webhook,
    notices_request_body,
    parse_notices_answer,
    parse_notices_request,
    sign_batch,
)
from airflow_provider_alta._webhook.contract import (
    SIGNATURE_HEADER,
    TaskInstanceRef,
    WebhookGrant,
    WebhookSettings,
    airflow_webhook,
    sign,
)
from airflow_provider_alta._webhook.mailbox_protocol import MAX_CLOCK_SKEW, BatchRefused
from airflow_provider_alta.exceptions import AltaValidationError
from airflow_provider_alta.models import RunStatus

SECRET = "whs-batch-SECRET-5d1e"
BATCH = batch_id_of("alta_x", "etl", "manual__1", "enrich", -1, "f" * 64, "s3://bucket/out/")
GRANT = BatchGrant("alta_x", BATCH, 5, 1_900_000_000)
SETTINGS = WebhookSettings(enabled=True, base_url="https://airflow.example.com/", token_lifetime=3600)


def route_parts(path: str) -> list[str]:
    """The path's parts after ``/webhook/batch/b1/``, decoded as the server decodes them."""
    prefix = BATCH_ROUTE.split("{", 1)[0]
    assert path.startswith(prefix)
    return [unquote(part) for part in path[len(prefix) :].split("/")]


def test_the_path_names_the_route_and_parses_back_to_the_grant():
    assert BATCH_ROUTE == "/webhook/batch/b1/{conn_id}/{batch_id}/{item}/{expires_at}"
    assert BATCH_NOTICES_ROUTE == "/batch-notices/b1"
    odd = BatchGrant("alta x/ü?#", BATCH, 0, 1_900_000_000)
    for grant in (GRANT, odd, replace(GRANT, item=MAX_ITEM)):
        parts = route_parts(grant.path())
        assert len(parts) == 4
        assert batch_grant_from_path(*parts) == grant


def test_the_batch_id_is_stable_and_every_input_changes_it():
    args = ("alta_x", "etl", "manual__1", "enrich", -1, "f" * 64, "s3://bucket/out/")
    assert batch_id_of(*args) == BATCH and re.fullmatch("[0-9a-f]{32}", BATCH)
    changed = {
        batch_id_of(*args[:i], other, *args[i + 1 :]) for i, other in enumerate(("b", "e", "m", "t", 0, "g", "u"))
    }
    assert len(changed) == 7 and BATCH not in changed


@pytest.mark.parametrize(
    "parts",
    [
        ("", BATCH, "5", "1900000000"),
        ("c" * 251, BATCH, "5", "1900000000"),
        ("alta\nx", BATCH, "5", "1900000000"),
        ("alta_x", BATCH.upper(), "5", "1900000000"),
        ("alta_x", BATCH[:31], "5", "1900000000"),
        ("alta_x", BATCH + "0", "5", "1900000000"),
        ("alta_x", "g" * 32, "5", "1900000000"),
        ("alta_x", BATCH, "-1", "1900000000"),
        ("alta_x", BATCH, "05", "1900000000"),
        ("alta_x", BATCH, "+5", "1900000000"),
        ("alta_x", BATCH, "5.0", "1900000000"),
        ("alta_x", BATCH, "٥", "1900000000"),
        ("alta_x", BATCH, str(MAX_ITEM + 1), "1900000000"),
        ("alta_x", BATCH, "9" * 40, "1900000000"),
        ("alta_x", BATCH, "5", "0"),
        ("alta_x", BATCH, "5", "-1900000000"),
        ("alta_x", BATCH, "5", "1.9e9"),
        ("alta_x", BATCH, "5", "9" * 40),
    ],
)
def test_paths_no_batch_could_hand_out_are_refused(parts):
    assert batch_grant_from_path(*parts) is None


def test_a_token_opens_only_its_own_item_batch_connection_and_expiry():
    header = sign_batch(SECRET, GRANT)
    assert header.startswith("sha256=") and batch_signature_matches(SECRET, GRANT, header)
    assert batch_signature_matches(SECRET, GRANT, f"  {header} ")
    others = [
        replace(GRANT, item=6),
        replace(GRANT, batch_id=batch_id_of("alta_x", "etl", "manual__2", "enrich", -1, "f" * 64, "s3://bucket/out/")),
        replace(GRANT, conn_id="alta_y"),
        replace(GRANT, expires_at=GRANT.expires_at + 1),
    ]
    for other in others:
        assert not batch_signature_matches(SECRET, other, header)
        assert batch_signature_matches(SECRET, other, sign_batch(SECRET, other))
    assert not batch_signature_matches("another-secret", GRANT, header)


@pytest.mark.parametrize("header", [None, "", "sha256=", "sha256=" + "0" * 64, "garbage", "sha256=é"])
def test_missing_or_bad_headers_never_match(header):
    assert not batch_signature_matches(SECRET, GRANT, header)


def test_no_secret_matches_nothing_not_even_the_no_secret_signature():
    assert not batch_signature_matches(None, GRANT, sign_batch("alta-batch-webhook-no-secret", GRANT))
    assert not batch_signature_matches(None, GRANT, None)


def test_single_run_tokens_never_pass_as_batch_tokens_nor_the_reverse():
    ref = TaskInstanceRef("alta_x", "etl", "manual__1", "enrich", 5)
    single = WebhookGrant(ref, 1, GRANT.expires_at)
    assert GRANT.message().startswith(BATCH_DOMAIN) and not single.message().startswith(BATCH_DOMAIN)
    assert not batch_signature_matches(SECRET, GRANT, sign(SECRET, single))
    assert sign(SECRET, single) != sign_batch(SECRET, GRANT)
    # Nor can a batch's parts be arranged into a single-run grant signing the same bytes.
    assert all(not WebhookGrant(ref, n, GRANT.expires_at).message().startswith(b"alta-batch") for n in range(3))


def test_expiry():
    assert GRANT.expired(now=GRANT.expires_at) and GRANT.expired(now=GRANT.expires_at + 1)
    assert not GRANT.expired(now=GRANT.expires_at - 1)
    assert "item 5" in GRANT.describe() and BATCH in GRANT.describe() and "alta_x" in GRANT.describe()


def test_the_invoke_webhook_points_at_the_receiver_with_the_token():
    grant = batch_grant(SETTINGS, "alta_x", BATCH, 7, now=1_800_000_000.5)
    assert grant == BatchGrant("alta_x", BATCH, 7, 1_800_003_600)
    hook = batch_webhook(SETTINGS, SECRET, "alta", grant)
    assert hook["method"] == "POST"
    assert hook["url"] == f"https://airflow.example.com/alta/webhook/batch/b1/alta_x/{BATCH}/7/1800003600"
    assert batch_signature_matches(SECRET, grant, hook["headers"][SIGNATURE_HEADER])
    assert SECRET not in json.dumps(hook)


def test_the_invoke_webhook_refuses_what_single_run_webhooks_refuse():
    ref = TaskInstanceRef("alta_x", "d", "r", "t")
    single = WebhookGrant(ref, 1, 1_900_000_000)
    cases = [
        (WebhookSettings(), SECRET, "alta"),
        (WebhookSettings(enabled=True, base_url="not-a-url"), SECRET, "alta"),
        (SETTINGS, SECRET, "http"),
        (SETTINGS, None, "alta"),
        (SETTINGS, "", "alta"),
    ]
    for settings, secret, conn_type in cases:
        with pytest.raises(AltaValidationError) as batch_error:
            batch_webhook(settings, secret, conn_type, GRANT)
        with pytest.raises(AltaValidationError) as single_error:
            airflow_webhook(settings, secret, single, conn_type)
        assert str(batch_error.value) == str(single_error.value)
    with pytest.raises(AltaValidationError, match="webhook_token_lifetime"):
        batch_grant(WebhookSettings(enabled=True, token_lifetime=float("nan")), "alta_x", BATCH, 1)


def test_what_the_reader_sends_is_what_the_receiver_reads():
    raw = notices_request_body("alta_x", BATCH, 41, [38, 40], now=1_700_000_000.7)
    assert json.loads(raw)["issued_at"] == 1_700_000_000
    read = parse_notices_request(raw)
    assert (read.conn_id, read.batch_id, read.after, read.forget) == ("alta_x", BATCH, 41, (38, 40))
    assert read.fresh(now=1_700_000_000 + MAX_CLOCK_SKEW) and not read.fresh(now=1_700_000_000 + MAX_CLOCK_SKEW + 1)
    assert not read.fresh(now=1_700_000_000 - MAX_CLOCK_SKEW - 1)


def request(**changes) -> bytes:
    body = {"conn_id": "alta_x", "batch_id": BATCH, "after": 0, "forget": [], "issued_at": 1_700_000_000}
    body.update(changes)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b"[" * 100_000,
        request(conn_id=...),
        request(conn_id=""),
        request(conn_id="c" * 251),
        request(conn_id=7),
        request(batch_id=BATCH.upper()),
        request(batch_id=None),
        request(after=-1),
        request(after=True),
        request(after=1.5),
        request(after="3"),
        request(after=2**63),
        request(forget=...),
        request(forget=5),
        request(forget=[-5]),
        request(forget=[True]),
        request(forget=list(range(MAX_FORGET + 1))),
        request(issued_at=...),
        request(issued_at="now"),
        request(issued_at=True),
        b'{"conn_id": "alta_x", "batch_id": "' + BATCH.encode() + b'", "after": 0, "forget": [], "issued_at": NaN}',
    ],
)
def test_malformed_reads_are_refused_as_400(raw):
    with pytest.raises(BatchRefused) as refused:
        parse_notices_request(raw)
    assert refused.value.status == 400 and refused.value.result == "malformed"


def run(run_id: str = "run-1", status: str = "SUCCEED") -> dict:
    return {"workflowRunId": run_id, "status": status, "output": {"news": ["x"]}, "totalCost": 0.5}


def test_an_answer_parses_into_notices_with_strictly_parsed_runs():
    page = parse_notices_answer({"notices": [[3, 5, run()], [9, 0, run("run-2", "FAILED")]], "more": True})
    assert page.more is True
    assert [(n.id, n.item, n.run.workflow_run_id, n.run.status) for n in page.notices] == [
        (3, 5, "run-1", RunStatus.SUCCEED),
        (9, 0, "run-2", RunStatus.FAILED),
    ]
    assert page.notices[0].run.output == {"news": ["x"]} and page.notices[0].run.total_cost == 0.5
    assert parse_notices_answer({"notices": [], "more": False}).notices == []


@pytest.mark.parametrize(
    "answer",
    [
        None,
        [],
        {"more": False},
        {"notices": [], "more": "no"},
        {"notices": []},
        {"notices": [[1, 2]], "more": False},
        {"notices": [[1, 2, run(), 4]], "more": False},
        {"notices": [["1", 2, run()]], "more": False},
        {"notices": [[1, -2, run()]], "more": False},
        {"notices": [[1, True, run()]], "more": False},
        {"notices": [[1, MAX_ITEM + 1, run()]], "more": False},
        {"notices": [[2, 1, run()], [2, 1, run("b")]], "more": False},
        {"notices": [[3, 1, run()], [2, 1, run("b")]], "more": False},
        {"notices": [[1, 1, {"status": "SUCCEED"}]], "more": False},
        {"notices": [[1, 1, run(status="DONE")]], "more": False},
        {"notices": [[1, 1, {**run(), "totalCost": "free"}]], "more": False},
        {"notices": [[1, 1, "SUCCEED"]], "more": False},
    ],
)
def test_malformed_answers_raise_value_error(answer):
    with pytest.raises(ValueError):
        parse_notices_answer(answer)
