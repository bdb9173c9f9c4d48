"""The "Alta spend" page: a plain server-rendered HTML document with inline CSS and SVG charts.

No script, no external asset (the page works offline and inside the Airflow UI's frame). Every text from the
database is escaped. Pure: it renders a :class:`~.spend_query.SpendReport` and nothing else.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Collection
from html import escape
from urllib.parse import urlencode

from airflow_provider_alta.plugins.spend_query import SpendReport, SpendTotals

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2933;background:#f7f8fa}
main{max-width:1100px;margin:0 auto;padding:20px 24px 40px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.sub{color:#52606d;margin:0 0 16px}
form{display:flex;gap:12px;flex-wrap:wrap;align-items:end;background:#fff;border:1px solid #e4e7eb;
border-radius:8px;padding:12px 14px}
label{display:flex;flex-direction:column;font-size:12px;color:#52606d;gap:4px}
select,input{font:inherit;padding:5px 8px;border:1px solid #cbd2d9;border-radius:6px;background:#fff}
button{font:inherit;padding:6px 14px;border:0;border-radius:6px;background:#017cee;color:#fff;cursor:pointer}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:12px;margin:16px 0}
.card{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:10px 14px}
.card b{display:block;font-size:20px}.card span{color:#52606d;font-size:12px}
.chart{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:8px 10px}
svg text{font-size:11px;fill:#52606d}.bar-cost{fill:#017cee}.bar-tokens{fill:#11a36c}
rect.bar:hover{opacity:.75}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid #e4e7eb;border-radius:8px}
th,td{padding:7px 10px;border-bottom:1px solid #eef0f2;text-align:left}
th{font-size:12px;color:#52606d;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.fail{color:#c92a2a}.empty{color:#52606d;padding:14px}
a{color:#017cee}
"""

_WIDTH, _HEIGHT, _LEFT, _BOTTOM, _TOP = 1040, 170, 56, 22, 10


def _number(value: float, digits: int = 4) -> str:
    """``value`` with thousands separators and at most ``digits`` decimals, trailing zeros dropped."""
    text = f"{value:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _chart(report: SpendReport, name: str, unit: str, value: Callable[[SpendTotals], float], digits: int) -> str:
    """One bar per day of the range; each bar carries its day and value (``data-date``, ``data-value``)."""
    days = sorted(report.days.items())
    peak = max((value(t) for _, t in days), default=0.0) or 1.0
    plot_w, plot_h = _WIDTH - _LEFT - 8, _HEIGHT - _BOTTOM - _TOP
    step = plot_w / max(len(days), 1)
    label_every = max(1, round(len(days) / 10))
    parts = [
        f'<svg class="chart-{name}" viewBox="0 0 {_WIDTH} {_HEIGHT}" width="100%" role="img" '
        f'aria-label="{escape(unit)} per day">',
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_WIDTH - 8}" y2="{_TOP + plot_h}" stroke="#cbd2d9"/>',
        f'<text x="{_LEFT - 6}" y="{_TOP + 8}" text-anchor="end">{escape(_number(peak, digits))}</text>',
        f'<text x="{_LEFT - 6}" y="{_TOP + plot_h}" text-anchor="end">0</text>',
    ]
    for index, (day, totals) in enumerate(days):
        amount = value(totals)
        height = plot_h * amount / peak
        x = _LEFT + index * step + step * 0.15
        parts.append(
            f'<rect class="bar bar-{name}" data-date="{day.isoformat()}" data-value="{amount!r}" '
            f'x="{x:.1f}" y="{_TOP + plot_h - height:.1f}" width="{step * 0.7:.1f}" height="{height:.1f}" rx="2">'
            f"<title>{day.isoformat()}: {escape(_number(amount, digits))} {escape(unit)}, "
            f"{totals.runs} runs</title></rect>"
        )
        if index % label_every == 0:
            parts.append(
                f'<text x="{x + step * 0.35:.1f}" y="{_HEIGHT - 6}" text-anchor="middle">{day.strftime("%b %d")}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _form(report: SpendReport, dag_ids: Collection[str], action: str) -> str:
    chosen = report.filter.dag_id
    options = ['<option value="">All DAGs</option>']
    for dag_id in sorted(dag_ids):
        selected = " selected" if dag_id == chosen else ""
        options.append(f'<option value="{escape(dag_id)}"{selected}>{escape(dag_id)}</option>')
    return (
        f'<form method="get" action="{escape(action)}">'
        f'<label>DAG<select name="dag_id" id="dag_id">{"".join(options)}</select></label>'
        f'<label>From<input type="date" name="start" id="start" value="{report.filter.start.isoformat()}"></label>'
        f'<label>To<input type="date" name="end" id="end" value="{report.filter.end.isoformat()}"></label>'
        '<button type="submit">Apply</button></form>'
    )


def _table(report: SpendReport) -> str:
    if not report.groups:
        return '<p class="empty">No finished Alta runs in this range.</p>'
    head = (
        "<tr><th>DAG</th><th>Task</th><th>Workflow</th><th class=n>Runs</th><th class=n>Failures</th>"
        "<th class=n>Total cost</th><th class=n>Mean cost</th><th class=n>Tokens</th></tr>"
    )
    rows = []
    for (dag_id, task_id, workflow), t in sorted(report.groups.items(), key=lambda item: -item[1].cost):
        mean = t.mean_cost
        rows.append(
            f'<tr class="spend-row" data-dag="{escape(dag_id)}"><td>{escape(dag_id)}</td><td>{escape(task_id)}</td>'
            f"<td>{escape(workflow) or '&ndash;'}</td><td class=n>{t.runs:,}</td>"
            f'<td class="n{" fail" if t.failures else ""}">{t.failures:,}</td>'
            f"<td class=n>{_number(t.cost)}</td><td class=n>{'&ndash;' if mean is None else _number(mean)}</td>"
            f"<td class=n>{_number(t.tokens, 0)}</td></tr>"
        )
    return f'<table id="spend-table"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def render_page(report: SpendReport, dag_ids: Collection[str], action: str, json_url: str) -> str:
    """The whole page for ``report``; ``dag_ids`` fill the DAG filter, ``json_url`` links the same data as JSON."""
    total = report.totals
    query = {"start": report.filter.start.isoformat(), "end": report.filter.end.isoformat()}
    if report.filter.dag_id:
        query["dag_id"] = report.filter.dag_id
    scope = escape(report.filter.dag_id) if report.filter.dag_id else "all DAGs you may read"
    cards = (
        f'<div class="card"><b id="total-runs">{total.runs:,}</b><span>finished runs</span></div>'
        f'<div class="card"><b id="total-cost">{_number(total.cost)}</b><span>credits</span></div>'
        f'<div class="card"><b id="total-tokens">{_number(total.tokens, 0)}</b><span>tokens</span></div>'
        f'<div class="card"><b id="total-failures">{total.failures:,}</b><span>failed runs</span></div>'
    )
    generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1"><title>Alta spend</title>'
        f"<style>{_CSS}</style></head><body><main>"
        "<h1>Alta spend</h1>"
        f'<p class="sub">Credits and tokens of finished Alta runs, {report.filter.start.isoformat()} to '
        f"{report.filter.end.isoformat()} (UTC days), {scope}. "
        f'<a href="{escape(json_url)}?{escape(urlencode(query))}">JSON</a> &middot; {generated}</p>'
        f"{_form(report, dag_ids, action)}<div class=cards>{cards}</div>"
        "<h2>Cost per day (credits)</h2>"
        f'<div class="chart">{_chart(report, "cost", "credits", lambda t: t.cost, 4)}</div>'
        "<h2>Tokens per day</h2>"
        f'<div class="chart">{_chart(report, "tokens", "tokens", lambda t: t.tokens, 0)}</div>'
        f"<h2>By DAG, task and workflow</h2>{_table(report)}"
        "</main></body></html>"
    )


def render_error(status: int, message: str, action: str) -> str:
    """The page's answer to a request it refuses (a bad date, an unknown DAG)."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Alta spend</title>'
        f"<style>{_CSS}</style></head><body><main><h1>Alta spend</h1>"
        f'<p class="fail" id="error">{status}: {escape(message)}</p><p><a href="{escape(action)}">Back to the last '
        "30 days</a></p></main></body></html>"
    )
