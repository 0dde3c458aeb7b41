"""The HTML report: one self-contained file, inline SVG charts, no script, no CDN."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from scoperouter.execution_log.analysis import ENTITY_LEVEL, INSUFFICIENT, Report
from scoperouter.execution_log.legend import COLUMNS, headline
from scoperouter.execution_log.unknown_sources import HINT, UnknownSource
from scoperouter.execution_log.whatif import what_if_notes, what_if_rows

BLUE = "#2563eb"
ORANGE = "#ea580c"
GREEN = "#16a34a"
GREY = "#6b7280"

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:20px;color:#111827;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
.sub{color:#6b7280;margin-bottom:16px}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px;min-width:130px}
.card b{display:block;font-size:20px}.card span{color:#6b7280;font-size:12px}
.charts{display:flex;gap:12px;flex-wrap:wrap}.chart{border:1px solid #e5e7eb;border-radius:8px;padding:8px}
.chart h3{font-size:13px;margin:0 0 4px;color:#374151}
table{border-collapse:collapse;font-size:13px;width:100%}th,td{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:right}
th:first-child,td:first-child,td.l,th:last-child{text-align:left}th{background:#f9fafb}
.rec{border-radius:10px;padding:1px 8px;font-size:12px;white-space:nowrap}
.rec.entity-level{background:#dcfce7;color:#166534}.rec.date-level{background:#fee2e2;color:#991b1b}
.rec.insufficient-data{background:#f3f4f6;color:#374151}
.why{color:#4b5563;font-size:11px;text-align:left;max-width:380px;margin-top:2px}
svg text{font:11px system-ui,sans-serif;fill:#374151}
.headline{font-size:15px;margin:0 0 14px}
.legend{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;font-size:12px;color:#4b5563}
.legend dt{font-weight:600}.legend dd{margin:0}
"""

# (HTML column label, meaning) of the processor table, after the processor name
HTML_COLUMNS: tuple[tuple[str, str], ...] = tuple((h, m) for _t, h, m in COLUMNS)


def _e(s: object) -> str:
    return html.escape(str(s), quote=True)


def _num(v: float | None, fmt: str = "{:.1f}", none: str = "n/a") -> str:
    if v is None or (isinstance(v, float) and (math.isnan(v) or math.isinf(v))):
        return none
    return fmt.format(v)


def line_chart(
    points: Sequence[tuple[str, float | None, float | None]],
    *,
    width: int = 380,
    height: int = 220,
    chart_id: str = "chart-waste",
) -> str:
    """Two series (as run, at date level) of percentages over labelled buckets."""
    left, right, top, bottom = 40, 24, 14, 44
    w, h = width - left - right, height - top - bottom
    n = len(points)

    def x(i: int) -> float:
        return left + (w / 2 if n == 1 else w * i / (n - 1))

    def y(v: float) -> float:
        return top + h - h * v / 100.0

    parts = [
        f'<svg id="{chart_id}" class="chart-svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" role="img">'
    ]
    for v in (0, 25, 50, 75, 100):
        parts.append(
            f'<line x1="{left}" x2="{left + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e5e7eb"/>'
        )
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v}%</text>')
    step = max(1, math.ceil(n / 6))
    for i, (label, _a, _b) in enumerate(points):
        if (i % step == 0 and (n - 1 - i >= step or i == 0)) or i == n - 1:
            parts.append(
                f'<text x="{x(i):.1f}" y="{top + h + 16}" text-anchor="middle">{_e(label[-5:] if "T" in label else label[5:])}</text>'
            )
    for idx, color, name in ((2, ORANGE, "waste at date level"), (1, BLUE, "waste as run")):
        pts = [(x(i), y(float(p[idx]))) for i, p in enumerate(points) if p[idx] is not None]  # type: ignore[arg-type]
        if not pts:
            continue
        if len(pts) > 1:
            d = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
            parts.append(
                f'<polyline class="series" points="{d}" fill="none" stroke="{color}" stroke-width="2.5"/>'
            )
        for a, b in pts:
            parts.append(
                f'<circle class="point" cx="{a:.1f}" cy="{b:.1f}" r="3.5" fill="{color}"><title>{name}</title></circle>'
            )
    lx = left
    for color, name in ((BLUE, "waste as run"), (ORANGE, "waste if every run were full date")):
        parts.append(f'<rect x="{lx}" y="{height - 14}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{lx + 14}" y="{height - 5}">{_e(name)}</text>')
        lx += 14 + 7 * len(name) + 16
    parts.append("</svg>")
    return "".join(parts)


def hbar_chart(
    rows: Sequence[tuple[str, Sequence[float]]],
    colors: Sequence[str],
    legend: Sequence[str],
    *,
    width: int = 430,
    chart_id: str,
    unit: str = "",
) -> str:
    """Horizontal (stacked) bars, one row per label."""
    label_w, right, top, row_h = 200, 56, 8, 20
    height = top + row_h * max(1, len(rows)) + 30
    w = width - label_w - right
    vmax = max((sum(v) for _l, v in rows), default=0.0) or 1.0
    parts = [
        f'<svg id="{chart_id}" class="chart-svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" role="img">'
    ]
    if not rows:
        parts.append(f'<text x="{width / 2}" y="{top + 14}" text-anchor="middle">no data</text>')
    for i, (label, vals) in enumerate(rows):
        yy = top + i * row_h
        parts.append(f'<text x="{label_w - 6}" y="{yy + 14}" text-anchor="end">{_e(label)}</text>')
        xx = float(label_w)
        for v, c in zip(vals, colors, strict=False):
            bw = w * v / vmax
            if bw > 0:
                parts.append(
                    f'<rect class="bar" x="{xx:.1f}" y="{yy + 3}" width="{max(bw, 1.5):.1f}" height="{row_h - 6}" fill="{c}"><title>{_e(label)}: {v:g}{unit}</title></rect>'
                )
            xx += bw
        total = sum(vals)
        parts.append(f'<text x="{xx + 4:.1f}" y="{yy + 14}">{_e(_short(total))}{_e(unit)}</text>')
    ly = height - 12
    lx = label_w
    for c, name in zip(colors, legend, strict=False):
        parts.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{c}"/>')
        parts.append(f'<text x="{lx + 14}" y="{ly}">{_e(name)}</text>')
        lx += 14 + 7 * len(name) + 16
    parts.append("</svg>")
    return "".join(parts)


def _short(v: float) -> str:
    if v == int(v):
        return str(int(v))
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def render_html(
    report: Report,
    *,
    title: str = "scoperouter report",
    what_if: dict[str, Any] | None = None,
    unknown_sources: list[UnknownSource] | None = None,
    rollout: dict[str, Any] | None = None,
) -> str:
    procs = report.processors
    tl = report.timeline
    saved_h = sum(p.saved_hours for p in procs)
    rec_counts = {
        k: sum(1 for p in procs if p.recommendation == k)
        for k in (ENTITY_LEVEL, "date-level", INSUFFICIENT)
    }
    span = ""
    if report.first_decision and report.last_decision:
        span = f"{report.first_decision:%Y-%m-%d %H:%M} → {report.last_decision:%Y-%m-%d %H:%M} UTC"
    cards = [
        (str(report.events), "events"),
        (str(report.decisions), "decisions"),
        (str(report.runs), "runs" + ("" if report.coalesced else " (uncoalesced)")),
        (f"{saved_h:.2f} h", "processing saved vs full date"),
        (str(rec_counts[ENTITY_LEVEL]), "processors where entity-level pays"),
    ]
    runs_rows = [
        (p.processor, [float(p.entity_runs), float(p.date_runs)])
        for p in sorted(procs, key=lambda p: (-p.runs, p.processor))
        if p.runs
    ]
    saved_rows = sorted(
        ((p.processor, [round(p.saved_hours * 60.0, 3)]) for p in procs if p.saved_hours > 0),
        key=lambda r: -r[1][0],
    )[:10]
    points = [(b["bucket"], b["waste_pct"], b["date_level_waste_pct"]) for b in tl]
    th = report.thresholds
    out = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
        f'<h1>{_e(title)}</h1><div class="sub">{_e(span)} · {report.days_observed} day(s) observed · '
        f"rule: entity-level pays when date-level waste &gt; {th.waste_pct:g}%, wasted hours &gt; "
        f"{th.wasted_hours_per_week:g}/week and payback &lt; {th.payback_weeks:g} weeks</div>",
        f'<p class="headline">{_e(headline(report))}</p>',
        '<div class="cards">',
        *(f'<div class="card"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for v, k in cards),
        '</div><h2>At a glance</h2><div class="charts">',
        '<div class="chart"><h3>Waste over time (% of entity rows not changed)</h3>',
        line_chart(points) if points else hbar_chart([], [BLUE], [""], chart_id="chart-waste"),
        '</div><div class="chart"><h3>Runs by scope</h3>',
        hbar_chart(runs_rows, [BLUE, ORANGE], ["entities", "date"], chart_id="chart-runs"),
        '</div><div class="chart"><h3>Top processors by time saved (minutes)</h3>',
        hbar_chart(
            saved_rows, [GREEN], ["saved vs full-date runs"], chart_id="chart-saved", unit=" min"
        ),
        "</div></div><h2>Processors</h2><table><thead><tr>",
        "".join(
            f'<th title="{_e(m)}">{_e(h)}</th>'
            for h, m in (("processor", "the processor, in pipeline order"), *HTML_COLUMNS)
        ),
        "</tr></thead><tbody>",
    ]
    for p in procs:
        out.append(
            "<tr>"
            f"<td>{_e(p.processor)}</td><td>{_e(p.phase if p.phase is not None else '')}</td>"
            f'<td class="l">{_e(p.granularity or "")}</td><td>{p.runs_per_day:.1f}</td>'
            f"<td>{p.entity_runs}</td><td>{p.date_runs}</td><td>{_num(p.avg_entities_per_run)}</td>"
            f"<td>{_num(p.waste_pct)}</td><td>{_num(p.date_level_waste_pct)}</td>"
            f"<td>{_num(p.date_level_wasted_hours_per_week, '{:.2f}')}</td><td>{p.saved_hours:.3f}</td>"
            f"<td>{_num(p.payback_weeks, '{:.1f}', none='never' if p.date_level_wasted_hours_per_week == 0 else 'n/a')}</td>"
            f'<td class="l"><span class="rec {_e(p.recommendation)}">{_e(p.recommendation)}</span>'
            f'<div class="why">{_e(p.why)}</div></td></tr>'
        )
    out.append('</tbody></table><dl class="legend">')
    out.extend(f"<dt>{_e(h)}</dt><dd>{_e(m)}</dd>" for h, m in HTML_COLUMNS)
    out.append("</dl>")
    if unknown_sources:
        out.append(render_unknown_html(unknown_sources))
    if what_if is not None:
        out.append(render_what_if_html(what_if))
    if rollout is not None:
        out.append(render_rollout_html(rollout))
    out.append(
        '<p class="sub">Generated by <code>scoperouter report</code>. Definitions: docs/report.md.</p>'
    )
    out.append("</body></html>\n")
    return "".join(out)


def render_unknown_html(items: list[UnknownSource]) -> str:
    """The unknown-sources section: events whose source routes.yaml names nowhere."""
    rows = "".join(
        f'<tr><td class="l">{_e(u.source)}</td><td>{u.events}</td>'
        f"<td>{_e(f'{u.first_seen:%Y-%m-%d %H:%M}' if u.first_seen else '-')}</td>"
        f"<td>{_e(f'{u.last_seen:%Y-%m-%d %H:%M}' if u.last_seen else '-')}</td></tr>"
        for u in items
    )
    return (
        f'<h2 id="unknown-sources">Unknown sources</h2><p class="sub">{_e(HINT)}</p>'
        "<table><thead><tr><th>source</th><th>events</th><th>first seen (UTC)</th>"
        f"<th>last seen (UTC)</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def render_what_if_html(w: dict[str, Any]) -> str:
    """The what-if section: the text report's table (:func:`.whatif.what_if_rows`)
    and its notes (events not re-planned, decisions the current settings do not reproduce,
    the closed loop not modelled)."""
    changes = ", ".join(f"{k}={v}" for k, v in w["changes"].items())
    rows = what_if_rows(w)
    body = "".join(f"<tr><td>{_e(k)}</td><td>{_e(a)}</td><td>{_e(b)}</td></tr>" for k, a, b in rows)
    notes = "".join(f'<p class="sub">{_e(n)}</p>' for n in what_if_notes(w))
    return (
        f"<h2>What if {_e(changes)}</h2><table><thead><tr><th>over {_e(w['events'])} logged events</th>"
        f"<th>current settings</th><th>what-if</th></tr></thead><tbody>{body}</tbody></table>"
        f"{notes}"
    )


def render_rollout_html(ro: dict[str, Any]) -> str:
    """The rollout section (``Rollout.to_json()``): by mode, then go / no-go per processor."""
    modes = "".join(
        f"<tr><td>{_e(m)}</td><td>{len(v['processors'])}</td><td>{v['runs']}</td>"
        f"<td>{_num(v['saved_hours_per_week'], '{:.2f}')}</td></tr>"
        for m, v in ro["by_mode"].items()
    )
    procs = "".join(
        f"<tr><td>{_e(p['processor'])}</td><td>{_e(p['mode'])}</td><td>{_e(p['decision'])}</td>"
        f"<td>{p['days_observed']}</td><td>{p['runs']}</td>"
        f"<td>{_num(p['saved_hours_per_week'], '{:.2f}')}</td>"
        f"<td>{_num(p['payback_weeks'], '{:.1f}', 'never')}</td><td>{_e(p['baseline'])}</td>"
        f"<td>{_e(p['why'])}</td></tr>"
        for p in ro["processors"]
    )
    return (
        "<h2>Rollout: shadow and live</h2><table><thead><tr><th>mode</th><th>processors</th>"
        f"<th>runs</th><th>saved h/week</th></tr></thead><tbody>{modes}</tbody></table>"
        f"<p>Next to move live: <b>{_e(ro['next_live'] or 'none')}</b> - {_e(ro['next_live_why'])}</p>"
        "<table><thead><tr><th>processor</th><th>mode</th><th>go / no-go</th><th>days</th>"
        "<th>runs</th><th>saved h/week</th><th>payback (weeks)</th><th>baseline</th><th>why</th>"
        f"</tr></thead><tbody>{procs}</tbody></table>"
    )
