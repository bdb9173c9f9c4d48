"""What Alta runs cost, aggregated in SQL from the XComs every finished run leaves behind.

A finished Alta task instance has, among its XComs, ``workflow_run_id``, ``status`` (``SUCCEED`` or ``FAILED``),
``total_cost``, ``total_tokens`` and ``workflow_name`` (see :mod:`airflow_provider_alta._core.finish_plan`). One query
pivots those rows per task instance, keeps the finished ones of the readable DAGs in the range, and groups them
by day, DAG, task and workflow (a batch's task instance counts as the runs it states, ``alta_runs``, with its
whole cost and tokens); Python only lays the few grouped rows out. Nothing new is stored. The day is
the UTC day of the ``status`` XCom, written when the run's end was handled. A task instance counts once, with
its latest try (Airflow clears a task instance's XComs when it runs again).
"""

from __future__ import annotations

import datetime
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_alta._core.finish_plan import XCOM_BATCH_FAILED_RUNS, XCOM_BATCH_RUNS
from airflow_provider_alta.plugins.spend_filter import SpendFilter

#: The XCom keys the query reads (values are stored as plain JSON scalars).
STATUS, COST, TOKENS, WORKFLOW, RUN_ID = "status", "total_cost", "total_tokens", "workflow_name", "workflow_run_id"
#: A batch's task instance holds many runs: it states their number and its failed runs instead of one run id.
RUNS, FAILED_RUNS = XCOM_BATCH_RUNS, XCOM_BATCH_FAILED_RUNS
FINISHED = ("SUCCEED", "FAILED")
#: XComs of one finish are written within moments of each other; the coarse range test allows this much.
_SLACK = datetime.timedelta(days=1)


@dataclass
class SpendTotals:
    """Runs, failures, credits and tokens of a set of finished runs."""

    runs: int = 0
    failures: int = 0
    cost: float = 0.0
    tokens: float = 0.0
    #: Runs that reported a cost (the mean cost is over these).
    costed: int = 0

    @property
    def mean_cost(self) -> float | None:
        return self.cost / self.costed if self.costed else None

    def add(self, other: SpendTotals) -> None:
        self.runs += other.runs
        self.failures += other.failures
        self.cost += other.cost
        self.tokens += other.tokens
        self.costed += other.costed

    def to_dict(self) -> dict[str, Any]:
        mean = self.mean_cost
        return {
            "runs": self.runs,
            "failures": self.failures,
            "total_cost": round(self.cost, 6),
            "mean_cost": None if mean is None else round(mean, 6),
            "tokens": int(self.tokens) if float(self.tokens).is_integer() else self.tokens,
        }


@dataclass
class SpendReport:
    """One answer of the spend view: the filter, a line per day (every day of the range) and per DAG/task/workflow."""

    filter: SpendFilter
    days: dict[datetime.date, SpendTotals] = field(default_factory=dict)
    groups: dict[tuple[str, str, str], SpendTotals] = field(default_factory=dict)

    @property
    def totals(self) -> SpendTotals:
        total = SpendTotals()
        for day in self.days.values():
            total.add(day)
        return total

    def to_dict(self) -> dict[str, Any]:
        """The JSON the view answers (and the page shows)."""
        return {
            "start": self.filter.start.isoformat(),
            "end": self.filter.end.isoformat(),
            "dag_id": self.filter.dag_id,
            "totals": self.totals.to_dict(),
            "days": [{"date": day.isoformat(), **totals.to_dict()} for day, totals in sorted(self.days.items())],
            "rows": [
                {"dag_id": dag_id, "task_id": task_id, "workflow": workflow, **totals.to_dict()}
                for (dag_id, task_id, workflow), totals in sorted(self.groups.items())
            ],
        }


def _scalar(dialect: str, column: Any) -> Any:
    """A JSON scalar XCom value as SQL text (``"SUCCEED"`` -> ``SUCCEED``, ``0.69`` -> ``0.69``)."""
    from sqlalchemy import Text, func, literal_column

    if dialect == "postgresql":
        return column.op("#>>", return_type=Text)(literal_column("'{}'"))
    if dialect == "mysql":
        return func.json_unquote(func.json_extract(column, "$"))
    return func.json_extract(column, "$")


def _utc_day(dialect: str, column: Any) -> Any:
    from sqlalchemy import func

    if dialect == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def spend_statement(dialect: str, spend_filter: SpendFilter, dag_ids: Collection[str]) -> Any:
    """The one SELECT behind a report: (day, dag_id, task_id, workflow, runs, failures, cost, costed, tokens) rows."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import Float, Integer, and_, case, cast, func, literal, or_, select

    x = XComModel.__table__.c
    text = _scalar(dialect, x.value)

    def of(key: str, value: Any) -> Any:
        return func.max(case((x.key == key, value)))

    low, high = spend_filter.bounds()
    status = of(STATUS, text)
    ended = of(STATUS, x.timestamp)
    per_task = (
        select(
            x.dag_id.label("dag_id"),
            x.task_id.label("task_id"),
            status.label("status"),
            ended.label("ended"),
            of(COST, cast(text, Float)).label("cost"),
            of(TOKENS, cast(text, Float)).label("tokens"),
            func.coalesce(of(WORKFLOW, text), literal("")).label("workflow"),
            of(RUNS, cast(text, Integer)).label("runs"),
            of(FAILED_RUNS, cast(text, Integer)).label("failed_runs"),
        )
        .where(
            x.key.in_((STATUS, COST, TOKENS, WORKFLOW, RUN_ID, RUNS, FAILED_RUNS)),
            x.dag_id.in_(sorted(dag_ids)),
            x.timestamp >= low - _SLACK,
            x.timestamp < high + _SLACK,
        )
        .group_by(x.dag_run_id, x.task_id, x.map_index, x.dag_id)
        .having(
            and_(
                or_(of(RUN_ID, literal(1)) == 1, of(RUNS, literal(1)) == 1),
                status.in_(FINISHED),
                ended >= low,
                ended < high,
            )
        )
        .subquery()
    )
    t = per_task.c
    day = _utc_day(dialect, t.ended)
    runs = func.coalesce(t.runs, 1)  # a single run's task instance, or a batch's many
    return select(
        day.label("day"),
        t.dag_id,
        t.task_id,
        t.workflow,
        func.sum(runs).label("runs"),
        func.sum(func.coalesce(t.failed_runs, case((t.status == "FAILED", 1), else_=0))).label("failures"),
        func.coalesce(func.sum(t.cost), 0.0).label("cost"),
        func.sum(case((t.cost.is_not(None), runs), else_=0)).label("costed"),
        func.coalesce(func.sum(t.tokens), 0.0).label("tokens"),
    ).group_by(day, t.dag_id, t.task_id, t.workflow)


def _as_date(value: Any) -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    return datetime.date.fromisoformat(str(value)[:10])


def spend_report(session: Any, spend_filter: SpendFilter, readable_dag_ids: Collection[str]) -> SpendReport:
    """The report of ``spend_filter`` over the DAGs the user may read (every day of the range present, zeros too)."""
    report = SpendReport(spend_filter, days={day: SpendTotals() for day in spend_filter.days})
    dag_ids = [spend_filter.dag_id] if spend_filter.dag_id else list(readable_dag_ids)
    if not dag_ids:
        return report
    dialect = session.get_bind().dialect.name
    for row in session.execute(spend_statement(dialect, spend_filter, dag_ids)):
        totals = SpendTotals(
            runs=int(row.runs),
            failures=int(row.failures or 0),
            cost=float(row.cost or 0.0),
            tokens=float(row.tokens or 0.0),
            costed=int(row.costed or 0),
        )
        day = _as_date(row.day)
        if day in report.days:
            report.days[day].add(totals)
        report.groups.setdefault((row.dag_id, row.task_id, row.workflow), SpendTotals()).add(totals)
    return report
