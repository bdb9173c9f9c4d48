"""Figures the production-shape scenarios measure: shown at the end of the session, written to .distributed/."""

from __future__ import annotations

from typing import Any

FIGURES: dict[str, Any] = {}
