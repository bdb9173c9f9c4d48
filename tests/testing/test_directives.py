"""Per-input outcomes over HTTP: an input's ``_alta_emulator`` field fails, refuses or times its own run."""

from __future__ import annotations

import pytest

from tests.testing.wire import INVOKE, post, query, start_run, wait_for


def finished(url: str, run_id: str) -> dict:
    return wait_for(lambda: (answer := query(url, run_id))["status"] in ("SUCCEED", "FAILED") and answer)


def test_fail_ends_that_run_failed_and_no_other(alta_emulator):
    alta_emulator.configure(duration=0)
    _, _, failing = start_run(alta_emulator.url, {"topic": "a", "_alta_emulator": {"fail": True}})
    _, _, worded = start_run(alta_emulator.url, {"topic": "b", "_alta_emulator": {"fail": "no summary for b"}})
    _, _, fine = start_run(alta_emulator.url, {"topic": "c"})
    failed = finished(alta_emulator.url, failing["workflowRunId"])
    assert failed["status"] == "FAILED" and failed["errorMessage"].startswith("Node 'Summarise' failed")
    assert finished(alta_emulator.url, worded["workflowRunId"])["errorMessage"] == "no summary for b"
    assert finished(alta_emulator.url, fine["workflowRunId"])["status"] == "SUCCEED"
    assert alta_emulator.key_stats()["runs"] == 3


@pytest.mark.parametrize(
    ("refuse", "status", "code"),
    [(400, 400, "INVALID_INPUT"), (True, 400, "INVALID_INPUT"), (422, 422, "UNPROCESSABLE_INPUT")],
)
def test_refuse_answers_the_invoke_with_an_error_and_starts_no_run(alta_emulator, refuse, status, code):
    got, _, answer = start_run(alta_emulator.url, {"topic": "a", "_alta_emulator": {"refuse": refuse}})
    assert (got, answer["error"]["code"], answer["error"]["status"]) == (status, code, status)
    counters = alta_emulator.key_stats()
    assert (counters["runs"], counters["invokes"], counters["refused_inputs"]) == (0, 1, 1)
    assert alta_emulator.stats()["runs"] == 0


def test_duration_sets_that_runs_length(alta_emulator):
    alta_emulator.configure(duration=30)
    _, _, quick = start_run(alta_emulator.url, {"topic": "a", "_alta_emulator": {"duration": 0.2}})
    _, _, usual = start_run(alta_emulator.url, {"topic": "b"})
    assert finished(alta_emulator.url, quick["workflowRunId"])["workflowExecutionTime"] == 200
    assert query(alta_emulator.url, usual["workflowRunId"])["status"] == "RUNNING"


def test_the_workflow_never_sees_the_field_and_answers_show_the_input_as_sent(alta_emulator):
    # The default Start node takes ``topic`` alone (additionalProperties: false): the field passes its schema.
    sent = {"topic": "Markets", "_alta_emulator": {"duration": 0}}
    status, _, answer = post(alta_emulator.url, INVOKE, {"input": sent})
    assert status == 200 and answer["input"] == sent
    assert answer["output"]["news"][0]["title"] == "Markets: the day's leading story"
    alta_emulator.configure(duration=0, input_schema=None, output_mode="echo")
    _, _, echoed = post(alta_emulator.url, INVOKE, {"input": sent})
    assert echoed["output"] == {"topic": "Markets"}


@pytest.mark.parametrize(
    ("directive", "named"),
    [
        ({"fial": True}, "unknown instructions ['fial']"),
        ({"refuse": 500}, "'_alta_emulator.refuse' must be 400, 422 or true"),
        ({"refuse": [400]}, "'_alta_emulator.refuse' must be 400, 422 or true"),
        ({"duration": -1}, "'_alta_emulator.duration' must be a number"),
        ({"duration": "2"}, "'_alta_emulator.duration' must be a number"),
        ({"fail": 1}, "'_alta_emulator.fail' must be true"),
        ("fail", "'_alta_emulator' must be an object"),
    ],
)
def test_a_mistaken_instruction_is_refused_naming_it(alta_emulator, directive, named):
    status, _, answer = start_run(alta_emulator.url, {"topic": "a", "_alta_emulator": directive})
    assert (status, answer["error"]["code"]) == (400, "INVALID_REQUEST")
    assert named in answer["error"]["message"]
    assert alta_emulator.stats()["runs"] == 0


def test_a_directive_leaves_the_other_runs_draws_alone(alta_emulator):
    """An item's directive does not shift which of the other items fail (the generator draws for every run)."""

    def outcomes(directives: dict[int, dict]) -> list[str]:
        alta_emulator.reset()
        alta_emulator.configure(duration=0, fail_probability=0.5)
        ids = []
        for i in range(12):
            run_input = {"topic": str(i), **({"_alta_emulator": directives[i]} if i in directives else {})}
            ids.append(start_run(alta_emulator.url, run_input)[2]["workflowRunId"])
        return [finished(alta_emulator.url, run_id)["status"] for run_id in ids]

    plain = outcomes({})
    directed = outcomes({3: {"fail": True}, 5: {"duration": 0}})
    assert "SUCCEED" in plain and "FAILED" in plain
    assert [s for i, s in enumerate(directed) if i != 3] == [s for i, s in enumerate(plain) if i != 3]
    assert directed[3] == "FAILED"
