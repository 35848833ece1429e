"""The RAG Ops page: the summary as one HTML document with inline CSS and SVG (no script, no CDN).

Everything that comes from the registry or from Airflow is escaped on its way into the HTML with `e()`.
"""

from __future__ import annotations

import json
from datetime import datetime
from html import escape

TITLES = {"index": "Index", "release": "Release and rollout", "evaluation": "Evaluation trend",
          "slo": "Service level, last 24 hours", "health": "Health probes", "audit": "MCP permission audit",
          "tools": "Connected MCP tools", "gaps": "Content gaps: what users ask that the docs do not answer"}

STYLE = """
:root { color-scheme: light dark; --fg:#0f172a; --muted:#64748b; --bg:#f8fafc; --card:#fff; --line:#e2e8f0;
  --ok:#15803d; --bad:#dc2626; --warn:#b45309; --accent:#0d9488; }
@media (prefers-color-scheme: dark) { :root { --fg:#e2e8f0; --muted:#94a3b8; --bg:#0b1120; --card:#111827;
  --line:#1f2937; --ok:#4ade80; --bad:#f87171; --warn:#fbbf24; } }
* { box-sizing: border-box; }
body { margin:0; padding:16px; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
  color:var(--fg); background:var(--bg); }
header { display:flex; align-items:baseline; gap:16px; flex-wrap:wrap; margin-bottom:12px; }
h1 { font-size:22px; margin:0; } h2 { font-size:16px; margin:0 0 2px; }
.muted, .source { color:var(--muted); font-size:12px; }
.grid { display:grid; grid-template-columns:repeat(auto-fit, minmax(520px, 1fr)); gap:14px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px 16px; min-width:0; }
.source { margin-bottom:10px; } a { color:var(--accent); }
.figures { display:flex; flex-wrap:wrap; gap:10px 24px; margin:6px 0 10px; }
.figure .label { color:var(--muted); font-size:12px; } .figure .value { font-size:20px; font-weight:600; }
.figure.bad .value { color:var(--bad); } .figure.ok .value { color:var(--ok); } .figure.warn .value { color:var(--warn); }
table { border-collapse:collapse; width:100%; font-size:13px; margin-top:6px; }
th, td { text-align:left; padding:4px 6px; border-bottom:1px solid var(--line); vertical-align:top;
  overflow-wrap:break-word; }
th { color:var(--muted); font-weight:500; white-space:nowrap; } td.id { word-break:break-all; }
.state { border-radius:4px; padding:0 6px; font-size:12px; border:1px solid currentColor; white-space:nowrap; }
.state-success, .state-ok, .state-up, .sev-info, .sev-low { color:var(--ok); }
.state-failed, .state-down, .sev-critical, .sev-high, .state-rolled_back { color:var(--bad); }
.state-running, .state-queued, .state-paused, .sev-medium, .state-skipped { color:var(--warn); }
.warn { color:var(--warn); } .bad { color:var(--bad); } .empty { color:var(--muted); font-style:italic; }
.evidence { font-size:12px; color:var(--muted); } .evidence summary { cursor:pointer; }
.evidence dl { display:grid; grid-template-columns:max-content 1fr; gap:0 8px; margin:4px 0; }
.evidence dt { color:var(--fg); } .evidence dd { margin:0; word-break:break-word; }
.figure.time .value { font-size:15px; } td time { white-space:nowrap; }
.stages { display:flex; gap:4px; margin:4px 0 8px; } .stages span { flex:1; text-align:center; font-size:12px;
  border-radius:4px; padding:2px 0; background:var(--line); } .stages span.done { background:var(--accent); color:#fff; }
.sparks { display:grid; grid-template-columns:max-content max-content 1fr; gap:4px 12px; align-items:center; }
.chart .tick { font-size:10px; fill:var(--muted); } .sparkbg { fill:var(--bg); }
.gap-terms { font-weight:600; } .gap q { display:block; color:var(--muted); font-size:12px; quotes:none; }
.legend span { margin-right:14px; font-size:12px; } .legend i { display:inline-block; width:10px; height:10px;
  border-radius:5px; margin-right:4px; vertical-align:middle; }
"""


def e(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def moment(iso: str | None, now: str | None = None, *, short: bool = False) -> str:
    """'2026-11-25 20:53 UTC (3 h ago)' from ISO strings; `short` for table cells, the full time on hover."""
    if not iso:
        return "never"
    at = datetime.fromisoformat(iso)
    text = f"{at:%b %d %H:%M}" if short else f"{at:%Y-%m-%d %H:%M} UTC"
    if now and not short:
        seconds = (datetime.fromisoformat(now) - at).total_seconds()
        ago = (f"{int(seconds // 60)} min" if seconds < 3600 else f"{seconds / 3600:.0f} h" if seconds < 172800
               else f"{seconds / 86400:.0f} days")
        text += f" ({ago} ago)" if seconds >= 60 else " (just now)"
    return f'<time datetime="{e(iso)}" title="{e(iso)}">{e(text)}</time>'


def pct(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value * 100:.{digits}f}%"


def figure(label: str, value, tone: str = "") -> str:
    return f'<div class="figure {tone}"><div class="label">{e(label)}</div><div class="value">{value}</div></div>'


def state(text: str | None) -> str:
    return f'<span class="state state-{e(text or "none")}">{e(text or "none")}</span>'


def evidence(data: dict, limit: int = 12) -> str:
    """A gate decision's or an audit finding's evidence: `key: value` pairs, folded away until asked for."""
    items = []
    for key, value in list((data or {}).items())[:limit]:
        text = str(value if isinstance(value, (str, int, float)) else json.dumps(value, default=str, sort_keys=True))
        items.append(f"<dt>{e(key)}</dt><dd>{e(text[:300] + ('…' if len(text) > 300 else ''))}</dd>")
    return (f'<details class="evidence"><summary>evidence</summary><dl>{"".join(items)}</dl></details>'
            if items else "")


def source_line(section: dict, now: str) -> str:
    """Which DAG produces the section, with links to it and to its latest run (opened in the whole window)."""
    dag = section.get("dag") or {"dag_id": section["dag_id"], "url": None, "latest_run": None}
    name = f'<a href="{e(dag["url"])}" target="_top">{e(dag["dag_id"])}</a>' if dag.get("url") else (
        f'{e(dag["dag_id"])} <span class="warn">(not in Airflow)</span>')
    if dag.get("paused"):
        name += ' <span class="warn">(paused)</span>'
    run = dag.get("latest_run")
    if run is None:
        return f'<div class="source">from DAG {name} · no run yet</div>'
    return (f'<div class="source">from DAG {name} · latest run {state(run["state"])} '
            f'<a href="{e(run["url"])}" target="_top">{e(run["run_id"])}</a> · {moment(run["run_after"], now)}</div>')


def generic_card(section: dict, now: str) -> str:
    """A section without a renderer of its own still shows its figures."""
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(json.dumps(v, default=str)[:400])}</td></tr>"
                   for k, v in section.items() if k not in ("dag", "dag_id"))
    return f"<table>{rows}</table>"


def card(name: str, section: dict, body: str, now: str) -> str:
    return (f'<section class="card" id="{e(name)}"><h2>{e(TITLES.get(name, name.replace("_", " ").capitalize()))}'
            f'</h2>{source_line(section, now)}{body}</section>')


def render(summary: dict) -> str:
    from ragops_ops_cards import RENDERERS

    now = summary["generated_at"]
    cards = "".join(card(name, section, RENDERERS.get(name, generic_card)(section, now), now)
                    for name, section in summary["sections"].items())
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>RAG Ops</title>'
            f'<meta http-equiv="refresh" content="60"><style>{STYLE}</style></head><body>'
            f'<header><h1>RAG Ops</h1><span class="muted">as of {moment(now)} · registry {e(summary["registry"])} · '
            f'reloads every minute · <a href="api/summary">JSON</a></span></header>'
            f'<main class="grid">{cards}</main></body></html>')


def error_page(message: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>RAG Ops</title>'
            f'<meta http-equiv="refresh" content="60"><style>{STYLE}</style></head><body><header><h1>RAG Ops</h1>'
            f'</header><section class="card"><h2 class="bad">The registry cannot be read</h2><p>{e(message)}</p>'
            f'<p class="muted">Check RAGOPS_DATABASE_URL / RAGOPS_HOME in the api-server\'s environment; the page '
            f'reloads every minute.</p></section></body></html>')
