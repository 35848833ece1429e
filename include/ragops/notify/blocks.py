"""Block Kit builders for the messages ragops posts.

File names, reasons, questions, release and client names are user-controlled: every mrkdwn text and the fallback
text of every message is escaped (`&`, `<`, `>`), so `<!channel>` in a file name pings no one and `<url|label>`
cannot disguise a link. Header texts are plain_text, which Slack never parses for mentions or links.
"""

from __future__ import annotations

import json
import math
import re

from ragops.notify.slack import Message

TEXT_LIMIT = 3000  # Slack's limit for a section's text and a message's fallback text
_CUT_ENTITY = re.compile(r"&[a-z]{0,3}$")


def escape(text: str) -> str:
    """Slack's three control characters as entities (https://api.slack.com/reference/surfaces/formatting#escaping)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cap(text: str, limit: int = TEXT_LIMIT) -> str:
    return text if len(text) <= limit else _CUT_ENTITY.sub("", text[:limit])


def _escape_mrkdwn(node):
    if isinstance(node, list):
        return [_escape_mrkdwn(n) for n in node]
    if not isinstance(node, dict):
        return node
    if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
        return node | {"text": _cap(escape(node["text"]))}
    return {k: _escape_mrkdwn(v) for k, v in node.items()}


def _safe(message: Message) -> Message:
    """Every builder returns through here: user-controlled strings cannot become Slack markup."""
    message.text = _cap(escape(message.text))
    message.blocks = _escape_mrkdwn(message.blocks)
    return message


def _fields(pairs: dict) -> dict:
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in pairs.items()][:10]}


def refresh_report(report: dict, source: str) -> Message:
    d, c = report["documents"], report["chunks"]
    headline = (f"Document refresh: {d['added']} added, {d['changed']} changed, {d['deleted']} deleted, "
                f"{d['quarantined']} quarantined; index version {report['index_version']}")
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Document refresh report"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"source `{source}` · run {report['run_id']} · {report['duration_s']} s"}]},
        _fields({"Added": d["added"], "Changed": d["changed"], "Deleted": d["deleted"], "Unchanged": d["unchanged"],
                 "Quarantined": d["quarantined"], "Index version": report["index_version"]}),
        _fields({"Chunks embedded": c["embedded"], "Chunks reused": c["reused"], "Chunks deleted": c["deleted"]}),
    ]
    if report.get("quarantine"):
        lines = "\n".join(f"• `{q['uri']}`: {q['reason']}" for q in report["quarantine"][:10])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Quarantined (last good version kept)*\n{lines}"}})
    return _safe(Message(headline, blocks, kind="report"))


def alert(title: str, detail: str, action: str | None = None) -> Message:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": f":rotating_light: {title}"[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": detail[:2900]}},
    ]
    if action:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"*What to do:* {action}"[:2900]}]})
    return _safe(Message(f"{title}: {detail}", blocks, kind="alert"))


def _delta(now: float, before: float | None) -> str:
    if before is None:
        return f"{now:.3f}"
    arrow = "▲" if now > before else "▼" if now < before else "="
    return f"{now:.3f} ({arrow} {now - before:+.3f})"


def eval_report(report: dict, previous: dict | None, chart: str | None = None) -> Message:
    metrics, comparison = report["metrics"], report["comparison"]
    shown = [m for m in ("answer_token_recall", "hit_rate", "doc_mrr", "context_mrr", "rouge_score",
                         "non_llm_context_recall", "faithfulness", "answer_relevancy", "fallback_rate") if m in metrics]
    verdict = "REGRESSED" if comparison.get("regressed") else "ok"
    headline = (f"Evaluation {verdict}: {report['release']} ({report['variant']}) on {report['n']} questions, "
                f"hit rate {metrics.get('hit_rate', 0):.3f}, answer-token recall {metrics.get('answer_token_recall', 0):.3f}")
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": f"Evaluation report: {verdict}"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"release `{report['release']}` · {report['variant']} · index version {report['index_version_id']} · "
            f"{report['generator']} · test set `{report['testset'].rsplit('/', 1)[-1]}` · run {report['run_id']} · "
            f"{report['duration_s']} s")}]},
        _fields({m: _delta(metrics[m], (previous or {}).get(m)) for m in shown}),
    ]
    baseline = comparison.get("baseline_run_id")
    blocks[1]["elements"].append({"type": "mrkdwn", "text": f"compared with the last accepted run {baseline} (paired, "
                                  f"per question)" if baseline else "no accepted baseline yet: floors only"})
    problems = [f"• *{d['metric']}* fell {d['previous']:.3f} → {d['current']:.3f}: {d['lost']} questions lost, "
                f"{d['gained']} gained (p={d['p']:.4f})" for d in comparison.get("drops", [])]
    problems += [f"• *{b['metric']}* {b['current']:.3f} is beyond its floor {b['floor']:.3f}" for b in comparison.get("below_floor", [])]
    cumulative = comparison.get("cumulative") or {}
    problems += [f"• *{d['metric']}* declined since reference run {cumulative.get('reference_run_id')}: "
                 f"{_num(d['reference'])} → {_num(d['current'])}, {d['lost']} questions lost, {d['gained']} gained "
                 f"(p={d['p']:.4f}; cumulative bound {cumulative.get('max_drop')})"
                 for d in cumulative.get("declines", [])]
    if problems:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "*Regressions*\n" + "\n".join(problems)}})
    changed = comparison.get("questions", [])
    if changed:
        lines = "\n".join(f"• {'▼' if q['worse'] else '▲' if not q['lost'] else '◆'} `{q['id']}` {q['question'][:80]} "
                          f"(recall {q['was']:.2f} → {q['now']:.2f}"
                          + (f"; lost {', '.join(q['lost'])}" if q["lost"] else "")
                          + (f"; gained {', '.join(q['gained'])}" if q["gained"] else "") + ")" for q in changed[:10])
        more = f"\n…and {len(changed) - 10} more" if len(changed) > 10 else ""
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": f"*Questions that changed*\n{lines}{more}"[:2900]}})
    return _safe(Message(headline, blocks, kind="alert" if comparison.get("regressed") else "report",
                         files=[chart] if chart else []))


def monitoring_digest(review: dict, chart: str | None = None) -> Message:
    o = review["overall"]
    breached = [s for s in review["slos"] if not s["ok"]]
    status = "SLO BREACHED" if breached else "anomalies" if review["anomalies"] else "healthy"
    headline = (f"Daily health digest ({status}): {o['requests']} requests, p95 {o['p95_ms']} ms, "
                f"error rate {o['error_rate']:.2%}, fallback rate {o['fallback_rate']:.2%}")
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": f"Daily health digest: {status}"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{review['start'][:16]} → {review['end'][:16]} UTC"}]},
        _fields({"Requests": o["requests"], "p50 / p95 / p99": f"{o['p50_ms']} / {o['p95_ms']} / {o['p99_ms']} ms",
                 "Error rate": f"{o['error_rate']:.2%}", "Fallback rate": f"{o['fallback_rate']:.2%}",
                 "Rate-limited": o["rate_limited"],
                 "Fallbacks": ", ".join(f"{k} {v}" for k, v in o["fallbacks"].items()) or "none",
                 "Disconnects": f"{o['disconnects']} ({o['disconnect_rate']:.2%})",
                 "Truncated answers": o["truncated"]}),
    ]
    slo_lines = "\n".join(f"{'✅' if s['ok'] else '❌'} {s['name']}: {s['actual']} (objective {s['objective']})" for s in review["slos"])
    if slo_lines:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*SLOs*\n{slo_lines}"}})
    if len(review["variants"]) > 1:
        lines = "\n".join(f"• {v}: {f['requests']} requests, p95 {f['p95_ms']} ms, errors {f['error_rate']:.2%}"
                          for v, f in review["variants"].items())
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*By variant*\n{lines}"}})
    if review["health"]:
        lines = "\n".join(f"• {c}: {h['availability']:.2%} of {h['probes']} probes ok" for c, h in review["health"].items())
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Health probes*\n{lines}"}})
    if review["anomalies"]:
        lines = "\n".join(f"• {a['message']}" for a in review["anomalies"])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Unusual*\n{lines}"}})
    return _safe(Message(headline, blocks, kind="alert" if breached else "report", files=[chart] if chart else []))


def health_transition(component: str, ok: bool, detail: str, since: str | None) -> Message:
    if ok:
        return _safe(Message(f"Recovered: {component} is healthy again ({detail})",
                       [{"type": "section", "text": {"type": "mrkdwn",
                                                     "text": f":white_check_mark: *{component}* recovered: {detail}"
                                                             + (f" (down since {since})" if since else "")}}],
                             kind="report"))
    return alert(f"{component} is down", detail, "check the component; you will hear once more when it recovers")


def rollout_decision(decision: dict) -> Message:
    icon = {"rollback": ":rewind:", "abort": ":no_entry:", "complete": ":tada:", "promote": ":arrow_up:",
            "raise": ":arrow_upper_right:", "hold": ":hourglass:", "start": ":rocket:"}.get(decision["decision"],
                                                                                          ":gear:")
    text = (f"Rollout {decision['decision']}: {decision['candidate'] or 'no candidate'} "
            f"{decision['from_percent']:g}% → {decision['to_percent']:g}%: {decision['reason']}")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} *{text}*"[:2900]}}]
    evidence = decision.get("evidence") or {}
    if evidence.get("canary"):
        c, s, m = evidence["canary"], evidence["stable"], evidence.get("metrics") or {}
        limit = (evidence.get("latency_limit_ms") or {}).get("users")

        def bounds(name: str, scale: float = 100.0, unit: str = " pts") -> str:
            b = m.get(name) or {}
            most = "none yet" if b.get("at_most") is None else f"{b['at_most'] * scale:+.1f}{unit}"
            least = b.get("at_least")
            least = "-" if least is None or least == float("-inf") else f"{least * scale:+.1f}{unit}"
            return f"at most {most}, at least {least} ({b.get('verdict', '?')})"

        blocks.append(_fields({
            "Canary requests (users)": f"{c['requests']} ({c.get('users', '?')}); probes {c.get('probes', 0)}",
            "Stable requests (users)": f"{s['requests']} ({s.get('users', '?')})",
            "Error rate (canary / stable)": f"{c['error_rate']:.2%} / {s['error_rate']:.2%}",
            "Fallback rate (canary / stable)": f"{c['fallback_rate']:.2%} / {s['fallback_rate']:.2%}",
            "p95 ms (canary / stable / limit)": f"{c['p95_ms']} / {s['p95_ms']} / {limit}",
            f"Error difference, {evidence.get('confidence', '95%')}": bounds("error_rate"),
            "Fallback difference": bounds("fallback_rate"),
            "Error difference per user (each user weighted equally)": bounds("error_rate_per_user"),
            "Fallback difference per user": bounds("fallback_rate_per_user"),
            "Canary share over its latency limit, beyond stable's over its p95": bounds("latency")}))
        more = {}
        if m.get("error_rate_by_tier"):
            t = m["error_rate_by_tier"].get("tier") or {}
            more[f"Error difference per user, activity tier {t.get('tier', '?')} "
                 f"(requests per user: {t.get('requests_per_user', '?')})"] = bounds("error_rate_by_tier")
        if m.get("latency_typical"):
            b = m["latency_typical"]
            ratio = lambda v: "none yet" if v is None else f"{math.exp(v):.2f}x"  # noqa: E731  logs of ratios
            more["Typical latency per user (canary / stable, geometric mean)"] = (
                f"at most {ratio(b.get('at_most'))}, limit {ratio(b.get('allowed'))} ({b.get('verdict', '?')})")
        if more:
            blocks.append(_fields(more))
    low = evidence.get("low_traffic")
    if low:
        action = {"raise_share": f"share raised to {low.get('to_percent', 0):g}%", "extend_horizon": "horizon extended",
                  "ask_a_person": "needs a person"}[low["action"]]
        if low.get("short") == "evidence":
            blocks.append(_fields({
                "Slow evidence": action, "Canary users (requests) so far": f"{low['users']} ({low['requests']})",
                "Still unsure": ", ".join(m.replace("_", " ") for m in low.get("unsure", [])),
                "Held": f"{low.get('held_hours', 0):g} hours at {low['percent']:g}%"}))
        else:
            blocks.append(_fields({
                "Low traffic": action, "Canary users (requests) so far": f"{low['users']} ({low['requests']})",
                "Needed": f"{low['min_users']} users, {low['min_requests']} requests",
                "Projected by the horizon": f"{low['projected_users']:g} users by {low['horizon'][:16]}"}))
    asked = (low or {}).get("action") == "ask_a_person"
    kind = "alert" if decision["decision"] in ("rollback", "abort") or asked else "report"
    return _safe(Message(text, blocks, kind=kind))


def audit_report(report: dict) -> Message:
    counts = report["counts"]
    worst = next((s for s in ("critical", "high", "medium", "low", "info") if counts.get(s)), None)
    headline = (f"MCP permission audit {report['period_start'][:10]} → {report['period_end'][:10]}: "
                + (", ".join(f"{counts[s]} {s}" for s in ("critical", "high", "medium", "low", "info") if counts.get(s))
                   or "no findings"))
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "MCP permission audit"}},
              {"type": "section", "text": {"type": "mrkdwn", "text": headline}}]
    icons = {"critical": ":red_circle:", "high": ":large_orange_circle:", "medium": ":large_yellow_circle:",
             "low": ":white_circle:", "info": ":information_source:"}
    lines = [f"{icons[f['severity']]} *{f['severity']}* {f['message']}" for f in report["findings"][:25]]
    if lines:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:2900]}})
    return _safe(Message(headline, blocks, kind="alert" if worst in ("critical", "high") else "report"))


def audit_anchor(anchor: dict, warnings: list[str]) -> Message:
    """The signed head of the MCP access log, whole, so that a copy kept in Slack can be checked later."""
    signed = "signed" if anchor["signature"] else "UNSIGNED"
    headline = f"MCP access log verified and anchored ({signed}): row {anchor['seq']}, head {anchor['head_hash'][:16]}"
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": f":anchor: {headline}"}},
              {"type": "section", "text": {"type": "mrkdwn",
                                           "text": f"```{json.dumps(anchor, sort_keys=True)}```"}}]
    if warnings:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "\n".join(warnings)[:2900]}]})
    return _safe(Message(headline, blocks, kind="report" if anchor["signature"] else "alert"))


def _clip(value, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tool_contracts_report(report: dict) -> Message:
    counts, tools = report["counts"], report["tools"]
    red = [t for t in tools if t["red"]]
    headline = (f"MCP tool contracts: {len(tools)} tools, {counts['unchanged']} unchanged, {counts['changed']} changed, "
                f"{counts['failing']} failing, {counts['down']} down, {counts['unpinned']} not approved, "
                f"{counts['duplicate']} listed twice, {counts['held']} held, not called, "
                f"{counts['slower']} slower than usual")
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "MCP tool contracts"}},
              {"type": "section", "text": {"type": "mrkdwn", "text": headline}}]
    lines = []
    for t in tools:
        name = f"`{t['tool']}` ({t['server_url']})"
        if t["state"] == "changed":
            lines.append(f":warning: {name} *changed*, held until approved: " + "; ".join(map(str, t["summary"])))
            lines += [f"    `{d['path']}`: {_clip(d['was'])} → {_clip(d['now'])}" for d in t["diff"][:5]]
        elif t["state"] in ("down", "missing", "unpinned", "duplicate"):
            lines.append(f":red_circle: {name} *{t['state']}*: {t['detail']}")
        elif t.get("held"):
            lines.append(f":no_entry: {name} *held*, not probed: {t['held_reason']}")
        if t["contract"] == "failed" and t["state"] != "down":
            failed = [p for p in t["probes"] if not p["ok"]]
            lines.append(f":x: {name} fails its contract: " + "; ".join(
                f"{p['name']}: {', '.join(p['problems'])}" for p in failed))
        if t["slower"]:
            lines.append(f":snail: {name} is slower than its recent history: {t['slower']}")
        if not t["red"] and not t["slower"]:
            lines.append(f":white_check_mark: {name} unchanged, contract {t['contract']}"
                         + (f", median {t['latency_ms']:.0f} ms" if t["latency_ms"] is not None else ""))
    if lines:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:2900]}})
    if red:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
            "*What to do:* `ragops tools diff TOOL` to see a change and its fingerprint, `ragops tools approve TOOL "
            "--fingerprint F` to accept exactly that; "
            "a failing or down tool needs its owner.")}]})
    return _safe(Message(headline, blocks, kind="alert" if red else "report"))


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def content_gaps_report(report: dict, top: int = 5) -> Message:
    """The monthly content gaps: the largest clusters of refused or down-voted questions, each with its words, its
    reach, example questions, where an answer would belong and its trend (docs/content-gaps.md)."""
    gaps = report["clusters"]
    headline = (f"Content gaps {report['period_start'][:10]} → {report['period_end'][:10]}: {len(gaps)} clusters "
                f"from {report['questions']} failed questions ({report['refused']} refused, "
                f"{report['down_voted']} down-voted) of {report['users']} users")
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "Content gaps"}},
              {"type": "section", "text": {"type": "mrkdwn", "text": headline
                                           + (" (capped: the newest were clustered)" if report["capped"] else "")}}]
    for g in gaps[:top]:
        where = (f"new page? nearest is `{g['belongs_in']}`" if g["new_page"] and g["belongs_in"]
                 else f"belongs in `{g['belongs_in']}`" if g["belongs_in"] else "no index to compare with")
        examples = "\n".join(f"> {_clip(r['question'], 200)}" for r in g["representatives"])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": (
            f"*{g['rank']}. {g['name']}*: {g['users']} users, {g['questions']} questions ({g['refused']} refused, "
            f"{g['down_voted']} down-voted), {g['trend']} (previous period {g['previous']}); {where}\n{examples}")}})
    if len(gaps) > top:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"{len(gaps) - top} more on the RAG Ops page and in `ragops gaps --json`")}]})
    return _safe(Message(headline, blocks, kind="report"))


def eval_side_by_side(table: dict) -> Message:
    """The stable release on the fixed test set and on the one grown from users' questions, metric by metric."""
    fixed, grown = table["fixed"], table["grown"]
    headline = (f"Evaluation, fixed and grown test sets: {table['release']} on {fixed['n']} fixed and {grown['n']} "
                f"grown questions")
    rows = [f"{'metric':<24} {'fixed':>8} {'grown':>8}"] + [
        f"{m:<24} {_num(v['fixed']):>8} {_num(v['grown']):>8}" for m, v in sorted(table["metrics"].items())]
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": headline}},
              {"type": "section", "text": {"type": "mrkdwn", "text": "```" + "\n".join(rows)[:2800] + "```"}},
              {"type": "context", "elements": [{"type": "mrkdwn", "text": (
                  f"runs {fixed['run_id']} (fixed) and {grown['run_id']} (grown, {grown['testset']}); the grown set "
                  "gates nothing: a lower figure there is a kind of question the knowledge base is weaker on")}]}]
    return _safe(Message(headline, blocks, kind="report"))
