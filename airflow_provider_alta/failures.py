"""The errors that fail a task at once, whatever its ``retries``: each a retry cannot fix, and says what to do.

The operator and the sensor raise these instead of the plain errors of :mod:`airflow_provider_alta.exceptions`
when a retry would meet the same answer (a rejected key, a refused input, a broken contract, a run whose outcome
or existence is unknown, a batch with more failed items than it allows). Each derives from its Alta error and
from Airflow's ``AirflowFailException``, so ``except AltaAuthError`` still catches :class:`AltaAuthFailure`; its
message ends with "Not retried:" and the fix.
Which error becomes which is decided in :mod:`airflow_provider_alta._airflow.fail_fast`.
"""

from __future__ import annotations

from airflow_provider_alta._airflow.fail_fast import (
    AltaAuthFailure,
    AltaBatchFailure,
    AltaContractFailure,
    AltaInvalidRequestFailure,
    AltaOutcomeUnknownFailure,
    AltaRunUnknownFailure,
    AltaUnsupportedOutputFailure,
    AltaValidationFailure,
    AltaWorkflowRunFailedError,
    classify_errors,
    for_airflow,
)

__all__ = [
    "AltaAuthFailure",
    "AltaBatchFailure",
    "AltaContractFailure",
    "AltaInvalidRequestFailure",
    "AltaOutcomeUnknownFailure",
    "AltaRunUnknownFailure",
    "AltaUnsupportedOutputFailure",
    "AltaValidationFailure",
    "AltaWorkflowRunFailedError",
    "classify_errors",
    "for_airflow",
]
