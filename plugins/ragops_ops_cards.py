"""One renderer per summary section. A new section (issue 13's tool contracts, say) adds its renderer to RENDERERS;
until then the page shows it with `page.generic_card`."""

from __future__ import annotations

import json

from ragops_ops_charts import HIT, RECALL, sparkline, trend_chart
from ragops_ops_page import e, evidence, figure, moment, pct, state


def index_card(s: dict, now: str) -> str:
    live, candidate, quarantined = s["live"], s["candidate"], s["quarantined"]
    if live is None:
        body = '<p class="empty">No index yet: the first successful document_refresh builds it.</p>'
    else:
        body = ('<div class="figures">' + figure("Documents", live["documents"]) + figure("Chunks", live["chunks"])
                + figure("Quarantined documents", quarantined["count"], "warn" if quarantined["count"] else "ok")
                + figure("Last successful refresh", moment(s["last_successful_refresh"], now), "time") + "</div>")
    rows = "".join(
        f'<tr><td>{role}</td><td>v{v["id"]}</td><td class="id">{e(v["collection"])} @ {v["store_version"]}</td>'
        f'<td>{v["documents"]}</td><td>{v["chunks"]}</td><td>{e(v["embedding_model"])}</td>'
        f'<td>{moment(v["created_at"], now, short=True)}</td></tr>' for role, v in (("live", live), ("candidate", candidate)) if v)
    if rows:
        body += ("<table><tr><th></th><th>version</th><th>collection</th><th>documents</th><th>chunks</th>"
                 f"<th>embedding model</th><th>created</th></tr>{rows}</table>")
    last = s["last_refresh"]
    if last and last["status"] in ("failed", "blocked"):
        body += (f'<p class="bad">Refresh run {last["id"]} {e(last["status"])} at {moment(last["finished_at"], now)}: '
                 f'{e(last["error"])}</p>')
    elif last and last["status"] == "planned":
        body += f'<p class="warn">Refresh run {last["id"]} in progress since {moment(last["started_at"], now)}.</p>'
    if quarantined["documents"]:
        body += "<table><tr><th>quarantined document</th><th>reason</th></tr>" + "".join(
            f'<tr><td class="id">{e(q.get("uri"))}</td><td>{e(q.get("reason"))}</td></tr>' for q in quarantined["documents"]) + "</table>"
    return body


def release_card(s: dict, now: str) -> str:
    stage = (f'{s["stage"]} of {len(s["stages"])} · {s["percent"]:g}% of users' if s["stage"]
             else f'{s["percent"]:g}% of users')
    body = ('<div class="figures">' + figure("Stable release", e(s["stable"]))
            + figure("Candidate", e(s["candidate"] or "none")) + figure("Rollout", state(s["status"]))
            + figure("Canary share", e(stage)) + "</div>")
    if s["candidate"]:
        reached = {p for p in s["stages"] if p <= s["percent"]}
        body += '<div class="stages">' + "".join(f'<span class="{"done" if p in reached else ""}">{p:g}%</span>'
                                                 for p in s["stages"]) + "</div>"
    if not s["decisions"]:
        return body + '<p class="empty">No gate decision yet: start a canary with canary_rollout (action start).</p>'
    body += low_traffic_line(s)
    rows = "".join(
        f'<tr><td>{moment(d["at"], now, short=True)}</td><td>{state(d["decision"])}</td><td>{e(d["candidate"] or "")}</td>'
        f'<td>{d["from_percent"]:g}% → {d["to_percent"]:g}%</td><td>{e(d["reason"])}{evidence(d["evidence"])}</td>'
        f'<td>{e(d["actor"])}</td></tr>' for d in s["decisions"])
    return body + ("<table><tr><th>when</th><th>decision</th><th>candidate</th><th>share</th>"
                   f"<th>reason and evidence</th><th>by</th></tr>{rows}</table>")


def low_traffic_line(s: dict) -> str:
    """The newest decision of a running rollout that could not reach the gate's minimum in time, said plainly."""
    low = (s["decisions"][0].get("evidence") or {}).get("low_traffic") if s["candidate"] else None
    if not low:
        return ""
    action = {"raise_share": f"the canary's share was raised to {low.get('to_percent', 0):g}%",
              "extend_horizon": "the horizon was extended", "ask_a_person": "it needs a person"}[low["action"]]
    css = "bad" if low["action"] == "ask_a_person" else "warn"
    if low.get("short") == "evidence":
        unsure = ", ".join(m.replace("_", " ") for m in low.get("unsure", []))
        return (f'<p class="{css}">Slow evidence: {low["users"]} real canary users, {low.get("held_hours", 0):g} hours '
                f'at {low["percent"]:g}%, and still unsure: {e(unsure)}; {action}.</p>')
    return (f'<p class="{css}">Low traffic: {low["users"]} real canary users so far, about {low["projected_users"]:g} '
            f'projected by {e(low["horizon"][:16])} where {low["min_users"]} are needed; {action}.</p>')


def evaluation_card(s: dict, now: str) -> str:
    latest = s["latest"]
    if latest is None:
        return ('<p class="empty">No evaluation yet: it runs after every refresh that changes the index, monthly and '
                'on demand.</p>')
    regressed = [r for r in s["runs"] if r["regressed"]]
    body = ('<div class="figures">' + figure("Hit rate", f'{latest["hit_rate"]:.3f}' if latest["hit_rate"] is not None
                                             else "n/a")
            + figure("Answer recall", f'{latest["answer_recall"]:.3f}' if latest["answer_recall"] is not None else "n/a")
            + figure("Latest run", state("regressed" if latest["regressed"] else "ok"),
                     "bad" if latest["regressed"] else "ok")
            + figure("Regressed runs shown", len(regressed), "bad" if regressed else "ok") + "</div>")
    body += (f'<div class="legend"><span><i style="background:{HIT}"></i>hit rate</span><span><i style="background:'
             f'{RECALL}"></i>answer recall</span><span><i style="background:#dc2626;opacity:.4;border-radius:0;width:5px"></i>regressed run</span></div>'
             + trend_chart(s["runs"]))
    body += (f'<p class="muted">Test set {e(s["testset"])} · latest run {latest["run_id"]} of {e(latest["release"])} '
             f'({e(latest["variant"])}, {latest["n"]} questions, {e(latest["generator"])}) at '
             f'{moment(latest["at"], now)}</p>')
    for r in regressed[-3:]:
        body += (f'<p class="bad">Run {r["run_id"]} ({e(r["release"])}) regressed: '
                 f'{e(", ".join(r["drops"] + r["below_floor"]) or "see its report")}</p>')
    return body


def slo_card(s: dict, now: str) -> str:
    if not s["requests"]:
        return '<p class="empty">No requests in the last 24 hours.</p>'
    ok = {slo["name"]: slo["ok"] for slo in s["slos"]}
    tone = {True: "ok", False: "bad", None: ""}
    body = ('<div class="figures">' + figure("Requests", s["requests"])
            + figure(f'p95 latency (≤ {s["objectives"]["p95_ms"]:g} ms)', f'{s["p95_ms"]:g} ms', tone[ok.get("p95 latency")])
            + figure(f'Error rate (≤ {pct(s["objectives"]["error_rate"])})', pct(s["error_rate"]),
                     tone[ok.get("error rate")])
            + figure(f'Availability (≥ {pct(s["objectives"]["availability"])})', pct(s["availability"]),
                     tone[ok.get("availability")]) + "</div>")
    hours = s["hourly"]
    rows = [("p95 latency per hour", f'{s["p95_ms"]:g} ms',
             sparkline([h["p95_ms"] for h in hours], limit=s["objectives"]["p95_ms"], label="p95 latency per hour")),
            ("error rate per hour", pct(s["error_rate"]),
             sparkline([h["error_rate"] if h["requests"] else None for h in hours], limit=s["objectives"]["error_rate"],
                       label="error rate per hour"))]
    rows += [(f"fallback {code}", pct(rate), sparkline([h["fallback_rates"][code] if h["requests"] else None for h in hours],
                                                      color=HIT, label=f"fallback {code} per hour"))
             for code, rate in s["fallback_rates"].items()]
    return body + ('<p class="muted">Per hour from 24 hours ago to now; the dashed line is the objective.</p>'
                   '<div class="sparks">') + "".join(
        f'<span>{e(name)}</span><b>{e(value)}</b>{chart}' for name, value, chart in rows) + "</div>"


def health_card(s: dict, now: str) -> str:
    if not s["components"]:
        return '<p class="empty">No probe yet: health_probe starts after the first successful refresh.</p>'
    rows = "".join(f'<tr><td>{e(c["component"])}</td><td>{state("up" if c["ok"] else "down")}</td>'
                   f'<td>{moment(c["since"], now, short=True)}</td><td>{e(c["detail"])}</td></tr>' for c in s["components"])
    return f"<table><tr><th>component</th><th>state</th><th>since</th><th>last probe</th></tr>{rows}</table>"


def audit_card(s: dict, now: str) -> str:
    run = s["run"]
    if run is None:
        return '<p class="empty">No audit yet: mcp_permission_audit runs monthly and on demand.</p>'
    counts = run["counts"]
    body = '<div class="figures">' + "".join(
        figure(severity, counts.get(severity, 0), ("bad" if severity in ("critical", "high") else "warn")
               if counts.get(severity) else "") for severity in ("critical", "high", "medium", "low", "info")) + "</div>"
    body += (f'<p class="muted">Run {run["id"]} at {moment(run["at"], now)} over {moment(run["period_start"])} to '
             f'{moment(run["period_end"])}; {run["findings"]} findings.</p>')
    if not s["findings"]:
        return body + '<p class="empty">No findings.</p>'
    rows = "".join(f'<tr><td class="sev-{e(f["severity"])}">{e(f["severity"])}</td><td>{e(f["kind"])}</td>'
                   f'<td>{e(f["client"])}</td><td>{e(f["message"])}{evidence(f["evidence"])}</td></tr>'
                   for f in s["findings"])
    return body + f"<table><tr><th>severity</th><th>finding</th><th>client</th><th>what and evidence</th></tr>{rows}</table>"


def tools_card(s: dict, now: str) -> str:
    if not s["tools"]:
        return ('<p class="empty">No tool check yet: mcp_tool_contracts runs weekly and on demand '
                '(pin the tools first with <code>ragops tools pin</code>).</p>')
    rows = []
    for t in s["tools"]:
        latency = "-" if t["latency_ms"] is None else f'{t["latency_ms"]:.0f} ms'
        what = "; ".join(map(_change, t["diff"])) or t["detail"]
        what = "; ".join([what, *t.get("problems", [])]) if what else "; ".join(t.get("problems", []))
        server = t["server"].split("://", 1)[-1]  # shown as text: the page links nowhere outside the Airflow UI
        checked = moment(t["at"], now, short=True) if t["at"] else "never"
        rows.append(f'<tr><td>{e(t["tool"])}</td><td><span class="state state-{_tone(t)}">{e(t["state"])}</span></td>'
                    f'<td>{e(t["contract"])}</td><td>{e(latency)}</td><td>{checked}</td><td>{e(server)}<br>{e(what)}</td></tr>')
    return ("<table><tr><th>tool</th><th>definition</th><th>contract</th><th>probe median</th><th>checked</th>"
            f"<th>server and what changed or failed</th></tr>{''.join(rows)}</table>")


def _tone(tool: dict) -> str:
    """Only a tool that matches its pin and keeps its contract looks well; one never checked is a warning."""
    if tool["state"] == "unchanged" and tool["contract"] in ("passed", "none"):
        return "up"
    return "paused" if tool["at"] is None else "down"


def _change(change) -> str:
    """One diff entry as text: a {path, kind, was, now} change, or the plain text older checks stored."""
    if not isinstance(change, dict):
        return str(change)
    return (f'{change.get("path")} {change.get("kind")}: {json.dumps(change.get("was"), ensure_ascii=False)[:80]} → '
            f'{json.dumps(change.get("now"), ensure_ascii=False)[:80]}')


def gaps_card(s: dict, now: str) -> str:
    report = s["report"]
    if report is None:
        return ('<p class="empty">No content-gap report yet: content_gaps runs monthly, <code>ragops gaps</code> on '
                'demand.</p>')
    body = ('<div class="figures">' + figure("Failed questions", report["questions"])
            + figure("Refused", report["refused"]) + figure("Down-voted", report["down_voted"])
            + figure("Users affected", report["users"]) + figure("Clusters", report["clusters"]) + "</div>")
    body += (f'<p class="muted">{moment(report["period_start"])} to {moment(report["period_end"])}, generated '
             f'{moment(report["generated_at"], now)}' + (" · capped: the newest questions were clustered" if
                                                          report["capped"] else "") + "</p>")
    if not s["clusters"]:
        return body + '<p class="empty">No cluster: the failed questions share no topic.</p>'
    rows = []
    for g in s["clusters"]:
        where = e(g["belongs_in"] or "no index")
        where = f'<span class="warn">new page?</span> nearest: {where}' if g["new_page"] else where
        questions = "".join(f'<q>{e(r["question"])}</q>' for r in g["representatives"])
        tone = "bad" if g["trend"] in ("new", "growing") else ""
        rows.append(f'<tr class="gap"><td>{g["rank"]}</td><td><span class="gap-terms">{e(g["name"])}</span>{questions}'
                    f'</td><td>{g["users"]}</td><td>{g["questions"]}<br><span class="muted">{g["refused"]} refused, '
                    f'{g["down_voted"]} down</span></td><td class="{tone}">{e(g["trend"])}<br><span class="muted">'
                    f'before: {g["previous"]}</span></td><td class="id">{where}</td></tr>')
    return body + ("<table><tr><th>#</th><th>gap and example questions</th><th>users</th><th>questions</th>"
                   f"<th>trend</th><th>where an answer belongs</th></tr>{''.join(rows)}</table>")


RENDERERS = {"index": index_card, "release": release_card, "evaluation": evaluation_card, "slo": slo_card,
             "health": health_card, "audit": audit_card, "tools": tools_card, "gaps": gaps_card}
