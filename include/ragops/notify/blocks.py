"""Block Kit builders for the messages ragops posts."""

from __future__ import annotations

from ragops.notify.slack import Message


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
    return Message(headline, blocks, kind="report")


def alert(title: str, detail: str, action: str | None = None) -> Message:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": f":rotating_light: {title}"[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": detail[:2900]}},
    ]
    if action:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"*What to do:* {action}"[:2900]}]})
    return Message(f"{title}: {detail}"[:3000], blocks, kind="alert")
