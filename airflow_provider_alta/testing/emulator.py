"""A local emulator of the Alta workflow API: a real HTTP server on 127.0.0.1.

It serves the two documented endpoints (``POST /v1/workflow/invoke`` and
``POST /v1/workflow/query/result``) with the documented bodies, headers and
error shape, so the provider and users' DAGs can be tested offline.

Where the API documentation is silent, the emulator chose:

* a FAILED run carries ``status: "FAILED"``, ``output: null`` and an
  ``errorMessage`` string;
* an unknown run id (or another key's run) answers 404 ``RUN_NOT_FOUND``;
  a missing or unknown key 401 ``UNAUTHORIZED``; an input that breaks the
  workflow's Start-node schema 400 ``INVALID_INPUT``; a malformed body 400
  ``INVALID_REQUEST`` (so does one nested deeper than 128 levels); a body
  over 1 MiB 413 ``PAYLOAD_TOO_LARGE``;
* an exhausted rate limit answers 429 ``RATE_LIMITED`` with ``Retry-After``
  (seconds) and the ``X-RateLimit-*`` headers; limits are fixed windows per key
  (``rate_window_age`` and ``rate_used_before`` start a key's first window part spent);
* a key's runs in flight are capped by ``concurrency_limit`` (the workflow's, else the emulator's; none by
  default): one invoke more is answered 429 ``CONCURRENCY_LIMIT_EXCEEDED`` with ``Retry-After`` (when the key's
  first run in flight ends, in decimal seconds) and starts nothing; the rate limit is checked first;
* webhooks: ``POST`` sends the query-result JSON; ``GET`` sends
  ``workflowRunId`` and ``status`` as query parameters; the caller's headers
  are sent as given, once per webhook when the run ends (a workflow's
  ``webhook_copies`` and ``webhook_delay`` lose, repeat or delay them);
* runs stay queryable for the emulator's lifetime (a workflow's ``queries_not_found`` answers a run's first
  queries 404 ``RUN_NOT_FOUND`` all the same); a run is PENDING for its
  first tenth (at most 0.2 s), then RUNNING until its duration has passed
  (a workflow's ``duration_field`` lets each run's input set its duration, ``duration_jitter`` spreads the
  durations from a seeded generator, and its ``time_scale`` runs it faster or slower than the wall clock: its
  answers still give the workflow's own duration).

An input may carry instructions for its own run in an ``_alta_emulator`` field (fail, be refused 400/422, last
a given time): see :mod:`airflow_provider_alta.testing.directives`.

Control endpoints under ``/_emulator/`` (not counted, no key needed) let tests
configure workflows, inject faults and read counters; see
:class:`airflow_provider_alta.testing.client.EmulatorClient`.

The emulator's rooms: :mod:`.app` (the aiohttp application and serving), :mod:`.api` (the two Alta endpoints),
:mod:`.control` (``/_emulator/``), :mod:`.state` (runs and counters), :mod:`.limits`, :mod:`.faults`,
:mod:`.webhooks`, :mod:`.directives`, :mod:`.model` (runs and faults, no HTTP), :mod:`.workflows` (the settings),
:mod:`.runner` (:class:`EmulatorThread`) and :mod:`.cli` (``alta-emulator``). This module is their public face.
"""

from __future__ import annotations

from airflow_provider_alta.testing.app import AltaEmulator, Serving
from airflow_provider_alta.testing.cli import banner, load_workflows, main
from airflow_provider_alta.testing.model import (
    FAULT_KINDS,
    INVOKE,
    MAX_BODY,
    MAX_REQUEST_DEPTH,
    QUERY,
    Fault,
    Run,
    key_id,
)
from airflow_provider_alta.testing.runner import EmulatorThread

__all__ = [
    "FAULT_KINDS",
    "INVOKE",
    "MAX_BODY",
    "MAX_REQUEST_DEPTH",
    "QUERY",
    "AltaEmulator",
    "EmulatorThread",
    "Fault",
    "Run",
    "Serving",
    "banner",
    "key_id",
    "load_workflows",
    "main",
]

if __name__ == "__main__":
    main()
