"""Which Alta errors Airflow should retry, and which should fail the task at once (Airflow's fail-fast).

The hooks raise the plain, Airflow-agnostic errors of :mod:`~airflow_provider_alta.exceptions`. The
operator and the sensor pass them through :func:`for_airflow`, which turns the
ones a retry cannot fix into subclasses that also derive from Airflow's
fail-fast exception: with ``retries=3, retry_delay=5 min`` a rejected key then
fails the task now, with the reason and the fix in its message, instead of
failing it 15 minutes later for the same reason. Everything else (a FAILED
run, a timeout, rate limits and network trouble that outlasted the hook's own
retries) stays retryable: a retry reattaches to the stored run or starts a new
one, and may well succeed.

The subclasses keep their Alta base, so ``except AltaAuthError`` still works. Their public home is
:mod:`airflow_provider_alta.failures` (the README names it), which is where tracebacks and pickles name them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from airflow_provider_alta._airflow.version_compat import AirflowFailException
from airflow_provider_alta.exceptions import (
    AltaAuthError,
    AltaBatchFailedError,
    AltaContractError,
    AltaError,
    AltaInvalidRequestError,
    AltaInvokeOutcomeUnknownError,
    AltaRunFailedError,
    AltaRunUnknownError,
    AltaUnsupportedOutputError,
    AltaValidationError,
    _rebuild,
)


class _NoRetry:
    """Renders the reason a retry was not made after the error's facts."""

    advice: str = ""

    def _render(self) -> str:
        return f"{super()._render()}. Not retried: {self.advice}"  # type: ignore[misc]


class AltaValidationFailure(_NoRetry, AltaValidationError, AirflowFailException):
    """A bad argument or connection setting: the same on every try."""


class AltaAuthFailure(_NoRetry, AltaAuthError, AirflowFailException):
    """401/403: the key stays rejected until someone changes the connection."""


class AltaInvalidRequestFailure(_NoRetry, AltaInvalidRequestError, AirflowFailException):
    """400/413/422: Alta refuses this input; sending it again gets the same answer."""


class AltaContractFailure(_NoRetry, AltaContractError, AirflowFailException):
    """The finished run broke the output schema or a limit; a retry reattaches to that same run."""


class AltaUnsupportedOutputFailure(_NoRetry, AltaUnsupportedOutputError, AirflowFailException):
    """The run SUCCEEDed with an output XCom cannot carry; a retry reattaches to that same output."""


class AltaOutcomeUnknownFailure(_NoRetry, AltaInvokeOutcomeUnknownError, AirflowFailException):
    """The invoke may have started a paid run: a retry could start a second one."""


class AltaRunUnknownFailure(_NoRetry, AltaRunUnknownError, AirflowFailException):
    """The run a previous try started is unknown to Alta: a retry would start a second one, maybe paid twice."""


class AltaBatchFailure(_NoRetry, AltaBatchFailedError, AirflowFailException):
    """Too many items of a batch failed: a retry skips the items done, so it would find the same failures."""


class AltaWorkflowRunFailedError(AltaRunFailedError, AirflowFailException):
    """A sensed run FAILED: the sensor cannot start it again, so a retry would see the same FAILED run."""


#: The fail-fast classes, public in :mod:`airflow_provider_alta.failures`.
PUBLIC_CLASSES: tuple[type[AltaError], ...] = (
    AltaValidationFailure,
    AltaAuthFailure,
    AltaInvalidRequestFailure,
    AltaContractFailure,
    AltaUnsupportedOutputFailure,
    AltaOutcomeUnknownFailure,
    AltaRunUnknownFailure,
    AltaBatchFailure,
    AltaWorkflowRunFailedError,
)
for _public in PUBLIC_CLASSES:
    _public.__module__ = "airflow_provider_alta.failures"


#: Alta error -> its fail-fast twin and what the user should do, checked in this order.
_NO_RETRY: tuple[tuple[type[AltaError], type[AltaError], str], ...] = (
    (
        AltaValidationError,
        AltaValidationFailure,
        "a retry cannot fix a bad setting; correct it, then clear the task",
    ),
    (
        AltaAuthError,
        AltaAuthFailure,
        "a retry cannot fix a rejected key; put a valid key in the connection's API Key field, then clear the task",
    ),
    (
        AltaInvalidRequestError,
        AltaInvalidRequestFailure,
        "Alta refuses this request as sent; fix the input (the workflow's Start-node parameters), then clear the task",
    ),
    (
        AltaContractError,
        AltaContractFailure,
        "a retry would reattach to the same finished run; change the contract or the workflow, then clear the task",
    ),
    (
        AltaRunUnknownError,
        AltaRunUnknownFailure,
        "look for the run in Alta's dashboard; the task no longer keeps its id, so clearing the task starts a new "
        "run, and retry_on_unknown_outcome=True lets a retry start one in its place",
    ),
    (
        AltaBatchFailedError,
        AltaBatchFailure,
        "a retry skips the items already done and finds the same failures; rerun_failed=True runs the failed items "
        "again (the others are kept), or raise max_failed_items, then clear the task",
    ),
    (
        AltaUnsupportedOutputError,
        AltaUnsupportedOutputFailure,
        "a retry would reattach to the same output; set output_format='json', then clear the task (no new run)",
    ),
)

_UNKNOWN_OUTCOME_ADVICE = (
    "the run may exist{run}: look for it in Alta's dashboard before clearing the task; "
    "retry_on_unknown_outcome=True lets Airflow retry, at the risk of a second paid run"
)


def for_airflow(err: AltaError, *, retry_on_unknown_outcome: bool = False, reattaches: bool = False) -> AltaError:
    """``err`` as Airflow should see it: its fail-fast twin when a retry cannot help, else ``err`` itself.

    ``reattaches``: the task keeps the id of a run an unreadable invoke answer named, so its retry reattaches to
    that run instead of invoking again (the outcome is unknown, but not the run).
    """
    if isinstance(err, AirflowFailException):
        return err
    if isinstance(err, AltaInvokeOutcomeUnknownError):
        if retry_on_unknown_outcome or (reattaches and err.workflow_run_id):
            return err
        run = f" (workflow_run_id={err.workflow_run_id})" if err.workflow_run_id else ""
        return _twin(err, AltaOutcomeUnknownFailure, _UNKNOWN_OUTCOME_ADVICE.format(run=run))
    for base, twin, advice in _NO_RETRY:
        if isinstance(err, base):
            return _twin(err, twin, advice)
    return err


def _twin(err: AltaError, cls: type[AltaError], advice: str) -> AltaError:
    return _rebuild(cls, err.cause, {**err.__dict__, "advice": advice})


F = TypeVar("F", bound=Callable[..., Any])


def classify_errors(method: F) -> F:
    """Decorate an ``execute``-like method so that the Alta errors it raises go through :func:`for_airflow`.

    The owner's ``retry_on_unknown_outcome`` and ``durable`` attributes, when it has them, decide the
    unknown-outcome case.
    """

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except AltaError as err:
            twin = for_airflow(
                err,
                retry_on_unknown_outcome=getattr(self, "retry_on_unknown_outcome", False),
                reattaches=getattr(self, "durable", False),
            )
            if twin is err:
                raise
            raise twin.with_traceback(err.__traceback__) from err.__cause__

    return wrapper  # type: ignore[return-value]
