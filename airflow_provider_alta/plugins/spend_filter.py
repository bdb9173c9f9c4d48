"""What an "Alta spend" request asks for: a date range and an optional DAG, checked before any query.

Pure: no I/O, no Airflow import. Every refusal is a :class:`SpendFilterError` whose message says what was wrong
and what is accepted; the view answers it with a 400.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection
from dataclasses import dataclass

#: Days shown when the request names no range (today included).
DEFAULT_DAYS = 30
#: The longest range one request may ask for.
MAX_DAYS = 366


class SpendFilterError(ValueError):
    """A request the spend view cannot answer (a 400): bad dates, a reversed or too long range, an unknown DAG."""


@dataclass(frozen=True)
class SpendFilter:
    """Runs that finished on ``start`` .. ``end`` (UTC days, both included), of one DAG or of every readable one."""

    start: datetime.date
    end: datetime.date
    dag_id: str | None = None

    @property
    def days(self) -> list[datetime.date]:
        """Every day of the range, in order."""
        return [self.start + datetime.timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def bounds(self) -> tuple[datetime.datetime, datetime.datetime]:
        """The range as aware UTC datetimes: ``[start 00:00, the day after end 00:00)``."""
        utc = datetime.timezone.utc
        low = datetime.datetime.combine(self.start, datetime.time(), utc)
        high = datetime.datetime.combine(self.end + datetime.timedelta(days=1), datetime.time(), utc)
        return low, high


def _date(value: str, name: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value.strip())
    except ValueError:
        raise SpendFilterError(f"{name}={value!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-01-31") from None


def parse_filter(
    *,
    start: str | None,
    end: str | None,
    dag_id: str | None,
    readable_dag_ids: Collection[str],
    today: datetime.date | None = None,
) -> SpendFilter:
    """The filter of one request, from its query parameters.

    Without ``end`` the range ends today (UTC); without ``start`` it covers :data:`DEFAULT_DAYS` days up to
    ``end``. ``dag_id`` must name a DAG the user may read: an unknown one and one the user may not read get the
    same answer, so the view reveals no DAG the user cannot see.
    """
    today = today or datetime.datetime.now(datetime.timezone.utc).date()
    last = _date(end, "end") if end else today
    first = _date(start, "start") if start else last - datetime.timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise SpendFilterError(f"start ({first.isoformat()}) is after end ({last.isoformat()})")
    if (last - first).days + 1 > MAX_DAYS:
        raise SpendFilterError(f"the range covers {(last - first).days + 1} days; at most {MAX_DAYS} are allowed")
    chosen = dag_id.strip() if dag_id else None
    if chosen and chosen not in readable_dag_ids:
        raise SpendFilterError(f"unknown DAG {chosen!r} (no DAG of that id that you may read)")
    return SpendFilter(start=first, end=last, dag_id=chosen or None)
