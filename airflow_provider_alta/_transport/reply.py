"""What one exchange with Alta hands back, whichever HTTP client carried it, and how it is read.

The body is decoded strictly, by the same rule in both clients: a body that is not valid in its declared charset
(or in UTF-8, JSON's own encoding, when none is declared) is a typed error, never text with replaced characters.
"""

from __future__ import annotations

import codecs
import contextlib
from collections.abc import Mapping
from typing import NamedTuple

from airflow_provider_alta._core.connection import AltaConnectionConfig
from airflow_provider_alta._core.protocol import (
    ApiRequest,
    is_concurrency_limit,
    parse_rate_limit,
    parse_response,
    redact,
)
from airflow_provider_alta._core.ratelimit import RateBudget
from airflow_provider_alta.exceptions import AltaError, AltaRateLimitError
from airflow_provider_alta.models import WorkflowRun


class Reply(NamedTuple):
    """An answer as it came off the wire: the status, the headers and the decoded body."""

    status: int
    headers: Mapping[str, str]
    text: str


def body_encoding(declared: str | None) -> str:
    """The declared charset when Python knows it, else UTF-8 (JSON's own encoding)."""
    if declared:
        with contextlib.suppress(LookupError, ValueError):
            return codecs.lookup(declared).name
    return "utf-8"


def read_answer(request: ApiRequest, reply: Reply, budget: RateBudget, config: AltaConnectionConfig) -> WorkflowRun:
    """The run an answer carries, or its typed error; the key's budget learns the rate-limit figures either way.

    A rate limit's ``Retry-After`` holds everyone sharing the key; a concurrency limit's only says when a run may
    start, so it holds no query. Error texts are scrubbed of the key in case the API echoes it. The key is read
    from ``config`` only here, never held in a local: a traceback that shows its frames' locals (Airflow 3.0's
    task log does) shows the config's ``repr``, which hides the key.
    """
    budget.observe(parse_rate_limit(reply.headers))
    try:
        return parse_response(request, reply.status, reply.headers, reply.text)
    except AltaError as err:
        if isinstance(err, AltaRateLimitError) and err.retry_after is not None and not is_concurrency_limit(err):
            budget.block(err.retry_after)
        if err.api_message:
            err.api_message = redact(err.api_message, [config.api_key])
            err.args = (err._render(),)
        raise
