"""The typed errors of the Alta provider.

Every error that reaches a user says what happened in words, plus the facts an
on-call engineer needs: the HTTP status, the API's own error code and message,
the endpoint and, when known, the workflow run id. No error ever carries the
API key or request headers.
"""

from __future__ import annotations

from typing import Any


class AltaError(Exception):
    """Base class of every error raised by the Alta provider."""

    def __init__(
        self,
        cause: str,
        *,
        status: int | None = None,
        code: str | None = None,
        api_message: str | None = None,
        endpoint: str | None = None,
        workflow_run_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.cause = cause
        self.status = status
        self.code = code
        self.api_message = api_message
        self.endpoint = endpoint
        self.workflow_run_id = workflow_run_id
        self.retry_after = retry_after
        super().__init__(self._render())

    def api_facts(self) -> dict[str, Any]:
        """What the API said (status, code, message, endpoint): for an error that restates this one's cause."""
        return {"status": self.status, "code": self.code, "api_message": self.api_message, "endpoint": self.endpoint}

    def _render(self) -> str:
        facts = []
        if self.status is not None:
            facts.append(f"HTTP {self.status}")
        if self.code:
            facts.append(f"code={self.code}")
        if self.api_message:
            facts.append(f"message={self.api_message!r}")
        if self.endpoint:
            facts.append(f"endpoint={self.endpoint}")
        if self.workflow_run_id:
            facts.append(f"workflow_run_id={self.workflow_run_id}")
        return f"{self.cause} ({', '.join(facts)})" if facts else self.cause

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep errors picklable (Airflow may ship them between processes).
        return (_rebuild, (type(self), self.cause, self.__dict__.copy()))


def _rebuild(cls: type[AltaError], cause: str, state: dict[str, Any]) -> AltaError:
    err = cls.__new__(cls)
    err.__dict__.update(state)
    Exception.__init__(err, err._render())
    return err


class AltaValidationError(AltaError, ValueError):
    """An argument is invalid; raised before any request is sent."""


class AltaApiError(AltaError):
    """The API answered with an HTTP error status."""


class AltaAuthError(AltaApiError):
    """401/403: the API key is missing, wrong, or has no access to this workflow."""


class AltaNotFoundError(AltaApiError):
    """404: unknown or expired workflow run id."""


class AltaRunUnknownError(AltaNotFoundError):
    """404 for the run a previous try of the task started: whether it ran, and what it cost, is unknown.

    Raised instead of invoking a new run in its place (unless ``retry_on_unknown_outcome=True``): the run may have
    expired from Alta's history, or the connection may now hold another key.
    """


class AltaInvalidRequestError(AltaApiError):
    """400/413/422: the API rejected the request (e.g. input not matching the Start node)."""


class AltaRateLimitError(AltaApiError):
    """429: the key's request quota is spent; ``retry_after`` says for how long, when known."""


class AltaServerError(AltaApiError):
    """5xx: the service failed or is unavailable."""


class AltaTransportError(AltaError):
    """The request did not complete at the network level.

    ``sent`` is False only when the request provably never reached the server
    (connection refused, DNS failure, connect timeout); only then may a
    non-idempotent call be retried.
    """

    def __init__(self, cause: str, *, sent: bool, **kwargs: Any) -> None:
        self.sent = sent
        super().__init__(cause, **kwargs)


class AltaInvokeOutcomeUnknownError(AltaError):
    """An invoke may have started a paid run, but no answer says so.

    Raised instead of retrying when an invoke timed out or got a 500/502/504:
    retrying could start a second run. The message says how to find out.
    """


class AltaInvalidResponseError(AltaError):
    """The API answered 2xx but the body is not the documented shape."""


class AltaResponseTooDeepError(AltaInvalidResponseError):
    """A 2xx answer nested too deeply to be parsed; the run (named when its id could be read) may exist."""


class AltaUnsupportedOutputError(AltaError):
    """A run SUCCEEDed, but its output cannot be pushed to XCom as it is; the message names the way out."""


class AltaRunFailedError(AltaError):
    """The workflow run ended with status FAILED."""


class AltaTimeoutError(AltaError):
    """Waiting for a run took longer than allowed; the remote run may still be going."""


class AltaContractError(AltaError):
    """A finished run broke a contract set on the task (output schema, cost or token limit)."""


class AltaBatchFailedError(AltaError):
    """More items of a batch failed than its ``max_failed_items`` allows; the result files list them."""
