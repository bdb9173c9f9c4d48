"""Per-input outcomes: the ``_alta_emulator`` field of a run's input tells the emulator what to do with that run.

A batch test needs some items to fail, some to be refused and some to run long, whatever workflow serves the key;
so the instruction travels with the item itself::

    {"topic": "Markets", "_alta_emulator": {"fail": true}}        # the run ends FAILED (its errorMessage: the
                                                                  #   workflow's, or the string given instead of true)
    {"topic": "Markets", "_alta_emulator": {"refuse": 422}}       # the invoke is answered 422 UNPROCESSABLE_INPUT
                                                                  #   (400 or true: 400 INVALID_INPUT); no run starts
    {"topic": "Markets", "_alta_emulator": {"duration": 30}}      # the run lasts 30 workflow seconds

The workflow never sees the field: the Start node's schema, the output template and ``output_mode="echo"`` get the
input without it. Answers still show the ``input`` as it was sent. An unknown instruction, or a value of the wrong
kind, is answered 400 ``INVALID_REQUEST`` naming it, so a typo in a test cannot pass unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The input field that carries the instructions.
DIRECTIVE_FIELD = "_alta_emulator"
#: The answer to a refused input, by its status.
REFUSAL_CODES = {400: "INVALID_INPUT", 422: "UNPROCESSABLE_INPUT"}


@dataclass(frozen=True, slots=True)
class Directive:
    """What one input asks of the emulator."""

    #: ``True`` (the workflow's message) or the failed run's ``errorMessage``.
    fail: bool | str = False
    #: The status (400 or 422) that answers the invoke instead of starting a run.
    refuse: int | None = None
    #: Workflow seconds the run lasts, before the workflow's ``duration_field`` and ``duration``.
    duration: float | None = None


#: An input without the field.
NO_DIRECTIVE = Directive()


def without_directive(run_input: dict[str, Any]) -> dict[str, Any]:
    """The input the workflow sees (a copy only when the field is there)."""
    if DIRECTIVE_FIELD not in run_input:
        return run_input
    return {name: value for name, value in run_input.items() if name != DIRECTIVE_FIELD}


def read_directive(run_input: dict[str, Any]) -> Directive:
    """The input's instructions; :class:`ValueError` saying what is wrong with them."""
    given = run_input.get(DIRECTIVE_FIELD)
    if given is None:
        return NO_DIRECTIVE
    if not isinstance(given, dict):
        raise ValueError(f"'{DIRECTIVE_FIELD}' must be an object")
    unknown = sorted(set(given) - {"fail", "refuse", "duration"})
    if unknown:
        raise ValueError(f"'{DIRECTIVE_FIELD}' has unknown instructions {unknown}; known: duration, fail, refuse")
    return Directive(
        fail=_fail(given.get("fail", False)),
        refuse=_refuse(given.get("refuse")),
        duration=_duration(given.get("duration")),
    )


def _fail(value: Any) -> bool | str:
    if isinstance(value, (bool, str)):
        return value
    raise ValueError(f"'{DIRECTIVE_FIELD}.fail' must be true, false or a failure message")


def _refuse(value: Any) -> int | None:
    if value is None or value is False:
        return None
    if value is True:
        return 400
    if isinstance(value, int) and value in REFUSAL_CODES:
        return value
    raise ValueError(f"'{DIRECTIVE_FIELD}.refuse' must be 400, 422 or true")


def _duration(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    raise ValueError(f"'{DIRECTIVE_FIELD}.duration' must be a number of seconds >= 0")
