"""Inline SVG charts for the RAG Ops page: nothing loaded from a CDN, nothing run in the browser.

Every label that reaches the SVG goes through `html.escape`: release names and the like come from the registry.
"""

from __future__ import annotations

from html import escape

HIT = "#2563eb"
RECALL = "#0d9488"
BAD = "#dc2626"
GRID = "#94a3b8"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def trend_chart(runs: list[dict], width: int = 560, height: int = 200) -> str:
    """Hit rate and answer recall per evaluation run (0 to 1); a regressed run gets a red ring and a red label."""
    if not runs:
        return ""
    left, right, top, bottom = 34, 10, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(1, len(runs) - 1)

    def x(i: int) -> float:
        return left + (i * step if len(runs) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h * (1 - max(0.0, min(1.0, v)))

    parts = [f'<svg class="chart" role="img" aria-label="evaluation trend" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="{GRID}" '
                     f'stroke-opacity="0.35" stroke-width="1"/><text x="{left - 4}" y="{y(tick) + 3:.1f}" '
                     f'text-anchor="end" class="tick">{tick:g}</text>')
    for key, color in (("hit_rate", HIT), ("answer_recall", RECALL)):
        points = [(x(i), y(r[key])) for i, r in enumerate(runs) if r.get(key) is not None]
        if len(points) > 1:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                         f'points="{" ".join(f"{px:.1f},{py:.1f}" for px, py in points)}"/>')
        for i, r in enumerate(runs):
            if r.get(key) is None:
                continue
            label = escape(f"run {r['run_id']} · {r['release']} ({r['variant']}) · {key.replace('_', ' ')} "
                           f"{_fmt(r[key])}" + (" · REGRESSED: " + ", ".join(r["drops"] + r["below_floor"])
                                                  if r["regressed"] else ""))
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(r[key]):.1f}" r="3.5" fill="{color}"><title>{label}</title>'
                         f'</circle>')
    for i, r in enumerate(runs):
        if r["regressed"]:
            why = escape(", ".join(r["drops"] + r["below_floor"]) or "regressed")
            parts.append(f'<line class="regressed" x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{top}" y2="{top + plot_h}" '
                         f'stroke="{BAD}" stroke-width="6" stroke-opacity="0.25"><title>run {r["run_id"]} regressed: '
                         f'{why}</title></line>')
        if r["regressed"] or i in (0, len(runs) - 1):
            fill = f' fill="{BAD}"' if r["regressed"] else ""
            parts.append(f'<text x="{x(i):.1f}" y="{height - 10}" text-anchor="middle" class="tick"{fill}>'
                         f'#{r["run_id"]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def sparkline(values: list[float | None], *, limit: float | None = None, width: int = 240, height: int = 44,
              color: str = RECALL, label: str = "") -> str:
    """One small chart of hourly values; hours without data leave gaps; `limit` draws the objective, dashed."""
    top_value = max([v for v in values if v is not None] + ([limit] if limit else []) + [1e-9])
    pad = 3

    def x(i: int) -> float:
        return pad + (width - 2 * pad) * (i / max(1, len(values) - 1))

    def y(v: float) -> float:
        return pad + (height - 2 * pad) * (1 - v / (top_value * 1.1))

    parts = [f'<svg class="spark" role="img" aria-label="{escape(label)}" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
             f'<rect x="0" y="0" width="{width}" height="{height}" rx="4" class="sparkbg"/>']
    if limit:
        parts.append(f'<line x1="0" x2="{width}" y1="{y(limit):.1f}" y2="{y(limit):.1f}" stroke="{BAD}" '
                     f'stroke-dasharray="4 3" stroke-width="1"><title>objective {limit:g}</title></line>')
    segment: list[str] = []
    for i, v in enumerate(values + [None]):
        if v is not None:
            segment.append(f"{x(i):.1f},{y(v):.1f}")
            continue
        if len(segment) == 1:
            cx, cy = segment[0].split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{color}"/>')
        elif segment:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{" ".join(segment)}"/>')
        segment = []
    parts.append("</svg>")
    return "".join(parts)
