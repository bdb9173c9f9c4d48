"""Which Alta errors fail a task at once: their fail-fast twins, found where the README says they are.

(That Airflow then retries the rest and only the rest: tests/operators/test_retry_classes.py, with dag.test().)
"""

from __future__ import annotations

import json
import pickle
import traceback

import pytest

from airflow_provider_alta import failures
from airflow_provider_alta._airflow import fail_fast
from airflow_provider_alta._airflow.version_compat import AirflowFailException
from airflow_provider_alta.exceptions import (
    AltaAuthError,
    AltaInvokeOutcomeUnknownError,
    AltaRateLimitError,
    AltaTimeoutError,
    AltaValidationError,
)
from airflow_provider_alta.failures import AltaAuthFailure, AltaValidationFailure, classify_errors, for_airflow


def test_fail_fast_twins_keep_their_alta_type_and_pickle():
    err = AltaAuthError("Alta rejected the API key", status=401, code="UNAUTHORIZED", endpoint="/v1/workflow/invoke")
    twin = for_airflow(err)
    assert isinstance(twin, AltaAuthFailure) and isinstance(twin, AltaAuthError)
    assert isinstance(twin, AirflowFailException)
    assert str(twin).startswith("Alta rejected the API key (HTTP 401, code=UNAUTHORIZED")
    assert "Not retried:" in str(twin)
    assert str(pickle.loads(pickle.dumps(twin))) == str(twin)
    assert for_airflow(twin) is twin
    # Transient errors, and an unknown outcome the user chose to retry, stay as they are.
    timeout = AltaTimeoutError("gave up", workflow_run_id="r-1")
    assert for_airflow(timeout) is timeout
    unknown = AltaInvokeOutcomeUnknownError("no answer", workflow_run_id="r-2")
    assert for_airflow(unknown, retry_on_unknown_outcome=True) is unknown
    assert "workflow_run_id=r-2" in str(for_airflow(unknown)).split("Not retried:")[1]
    assert json.dumps(str(twin))  # a plain message, as Airflow's serializer needs


def test_an_unknown_outcome_whose_run_is_known_is_retried_by_a_task_that_reattaches():
    named = AltaInvokeOutcomeUnknownError("unreadable answer", workflow_run_id="r-3")
    assert for_airflow(named, reattaches=True) is named
    unnamed = AltaInvokeOutcomeUnknownError("no answer")
    assert isinstance(for_airflow(unnamed, reattaches=True), AirflowFailException)


def test_the_twins_are_public_where_the_readme_names_them():
    """``airflow_provider_alta.failures`` is their home for users: imports, tracebacks and pickles all say so."""
    for cls in fail_fast.PUBLIC_CLASSES:
        assert getattr(failures, cls.__name__) is cls
        assert cls.__module__ == "airflow_provider_alta.failures"
        assert issubclass(cls, AirflowFailException)
    assert set(failures.__all__) >= {cls.__name__ for cls in fail_fast.PUBLIC_CLASSES}
    twin = for_airflow(AltaValidationError("input must be an object"))
    assert traceback.format_exception_only(twin)[0].startswith("airflow_provider_alta.failures.AltaValidationFailure:")
    assert b"airflow_provider_alta.failures" in pickle.dumps(twin)


class Task:
    """An ``execute``-like method's owner, with the attributes the operator gives ``classify_errors``."""

    retry_on_unknown_outcome = False
    durable = True

    def __init__(self, error: Exception) -> None:
        self.error = error

    @classify_errors
    def execute(self) -> str:
        raise self.error


def test_classify_errors_raises_the_twin_with_the_original_traceback():
    with pytest.raises(AltaValidationFailure) as raised:
        Task(AltaValidationError("bad setting")).execute()
    assert raised.traceback[-1].name == "execute"  # where the Alta error was raised, not the decorator
    assert "Not retried:" in str(raised.value)
    rate_limited = AltaRateLimitError("429", status=429)
    with pytest.raises(AltaRateLimitError) as raised:
        Task(rate_limited).execute()
    assert raised.value is rate_limited  # a retry may help: raised as it is
