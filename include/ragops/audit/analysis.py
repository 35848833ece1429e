"""The monthly MCP permission audit: the permissions file and the access log of a period, turned into findings."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from ragops.audit.permissions import ClientGrant, Permissions
from ragops.errors import RagopsError
from ragops.registry import Registry
from ragops.registry.models import AuditFinding, AuditRun, McpAccessLog

SEVERITIES = ("info", "low", "medium", "high", "critical")
DESTRUCTIVE = re.compile(r"(delete|drop|remove|purge|write|update|create|insert|upsert|exec|admin|reindex|rotate)", re.I)
EXPIRING_DAYS = 14
WIDE = 2  # a destructive tool granted by name to more clients than this is "granted widely"
DENIED_SPIKE = 10


class CriticalFindings(RagopsError):
    code = "audit_critical"
    exit_code = 6


@dataclass
class Finding:
    kind: str
    severity: str
    message: str
    client: str = ""
    evidence: dict = field(default_factory=dict)


@dataclass
class AuditReport:
    run_id: int
    period_start: str
    period_end: str
    findings: list[Finding]

    @property
    def counts(self) -> dict:
        return {s: sum(1 for f in self.findings if f.severity == s) for s in SEVERITIES}

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "period_start": self.period_start, "period_end": self.period_end,
                "counts": self.counts, "findings": [asdict(f) for f in self.findings]}


def snapshot(permissions: Permissions) -> dict:
    return {c.name: {"tools": sorted(c.tools), "collections": sorted(c.collections), "revoked": c.revoked,
                     "expires": c.expires.isoformat() if c.expires else None, "token": c.token_sha256[:12]}
            for c in permissions.clients}


def grant_findings(permissions: Permissions, now: datetime) -> list[Finding]:
    findings = []
    by_tool: dict[str, list[str]] = defaultdict(list)
    for c in permissions.clients:
        if c.revoked:
            continue
        if "*" in c.tools:
            findings.append(Finding("wildcard_grant", "high", f"{c.name} may call every tool (\"*\")", c.name,
                                    {"tools": list(c.tools)}))
        if "*" in c.collections:
            findings.append(Finding("broad_collections", "medium", f"{c.name} may read every collection", c.name,
                                    {"collections": list(c.collections)}))
        for tool in c.tools:
            by_tool[tool].append(c.name)
        if c.expires and c.expires <= now:
            findings.append(Finding("token_expired", "high", f"{c.name}'s token expired on {c.expires:%Y-%m-%d}; "
                                    "remove or rotate it", c.name, {"expires": c.expires.isoformat()}))
        elif c.expires and c.expires <= now + timedelta(days=EXPIRING_DAYS):
            findings.append(Finding("token_expiring", "medium", f"{c.name}'s token expires on {c.expires:%Y-%m-%d}",
                                    c.name, {"expires": c.expires.isoformat()}))
    for tool, clients in sorted(by_tool.items()):
        if tool != "*" and DESTRUCTIVE.search(tool) and len(clients) > WIDE:
            findings.append(Finding("destructive_tool_widely_granted", "high",
                                    f"the write/destructive tool {tool!r} is granted to {len(clients)} clients",
                                    "", {"tool": tool, "clients": clients}))
    return findings


def usage_findings(permissions: Permissions, rows: list[McpAccessLog]) -> list[Finding]:
    findings = []
    known = {c.name: c for c in permissions.clients}
    calls = Counter(r.client for r in rows)
    allowed_tools: dict[str, set] = defaultdict(set)
    denied = Counter(r.client for r in rows if r.decision == "denied")
    for r in rows:
        if r.decision == "allowed":
            allowed_tools[r.client].add(r.tool)
    for c in permissions.clients:
        if c.revoked:
            continue
        if calls[c.name] == 0:
            findings.append(Finding("token_never_used", "low", f"{c.name} made no call in the period; remove its "
                                    "token if it is no longer needed", c.name))
            continue
        unused = sorted(t for t in c.tools if t != "*" and t not in allowed_tools[c.name])
        if unused:
            findings.append(Finding("unused_grant", "low", f"{c.name} never used {', '.join(unused)}: "
                                    "narrow its grant (least privilege)", c.name, {"unused_tools": unused}))
    for name, n in denied.items():
        if name in known and n >= DENIED_SPIKE and n >= 0.25 * calls[name]:
            findings.append(Finding("denied_spike", "high", f"{name} was denied {n} of {calls[name]} calls", name,
                                    {"denied": n, "calls": calls[name],
                                     "tools": dict(Counter(r.tool for r in rows if r.client == name and r.decision == "denied"))}))
    anonymous = [r for r in rows if r.client in ("unknown", "anonymous")]
    if anonymous:
        findings.append(Finding("unknown_client_calls", "high" if len(anonymous) >= DENIED_SPIKE else "medium",
                                f"{len(anonymous)} calls came with a missing or unknown token", "",
                                {"calls": len(anonymous), "first": anonymous[0].ts.isoformat()}))
    for name in sorted(set(calls) - set(known) - {"unknown", "anonymous", "stdio"}):
        allowed = sum(1 for r in rows if r.client == name and r.decision == "allowed")
        findings.append(Finding("calls_from_removed_client", "critical" if allowed else "high",
                                f"{name} is not in the permissions file but made {calls[name]} calls ({allowed} allowed)",
                                name, {"calls": calls[name], "allowed": allowed}))
    for c in permissions.clients:
        if c.revoked and calls[c.name]:
            findings.append(_revoked_client_finding(c, [r for r in rows if r.client == c.name]))
    return findings


def _revoked_client_finding(grant: ClientGrant, rows: list[McpAccessLog]) -> Finding:
    """Only calls made after the revocation are a breach; a grant revoked before `revoked_at` was recorded has no
    cut-off, so all its calls count."""
    late = [r for r in rows if grant.revoked_at is None or _utc(r.ts) >= grant.revoked_at]
    if not late:
        return Finding("calls_before_revocation", "info", f"{grant.name} made {len(rows)} calls, all before its "
                       f"revocation at {grant.revoked_at:%Y-%m-%d %H:%M}", grant.name, {"calls": len(rows)})
    allowed = sum(1 for r in late if r.decision == "allowed")
    return Finding("calls_from_revoked_client", "critical" if allowed else "high",
                   f"revoked client {grant.name} made {len(late)} calls after its revocation ({allowed} allowed)",
                   grant.name, {"calls": len(late), "allowed": allowed, "before_revocation": len(rows) - len(late)})


def _utc(ts: datetime) -> datetime:
    """SQLite hands back naive datetimes that were written as UTC."""
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def drift_findings(previous: dict | None, current: dict) -> list[Finding]:
    if previous is None:
        return []
    findings = []
    for name in sorted(set(current) - set(previous)):
        findings.append(Finding("drift_client_added", "medium", f"{name} was added since the last audit", name,
                                {"now": current[name]}))
    for name in sorted(set(previous) - set(current)):
        findings.append(Finding("drift_client_removed", "info", f"{name} was removed since the last audit", name,
                                {"was": previous[name]}))
    for name in sorted(set(previous) & set(current)):
        was, now = previous[name], current[name]
        changed = {k: {"was": was[k], "now": now[k]} for k in now if was.get(k) != now[k]}
        if changed:
            widened = set(now["tools"]) - set(was["tools"]) or set(now["collections"]) - set(was["collections"])
            findings.append(Finding("drift_grant_changed", "medium" if widened else "info",
                                    f"{name}'s grant changed: {', '.join(sorted(changed))}", name, changed))
    return findings


TOOL_FINDINGS = {  # the newest contract check of each connected tool in the period
    "changed": ("tool_changed", "high", "{tool} changed its definition and is held until approved: {detail}"),
    "missing": ("tool_missing", "high", "{tool} is no longer offered by {server}"),
    "unpinned": ("tool_unpinned", "medium", "{tool} was never approved (`ragops tools pin`), so it is held"),
    "duplicate": ("tool_duplicate", "high", "{tool} is listed more than once by {server}, so it is held: {detail}"),
    "down": ("tool_down", "medium", "{tool}'s server was down at the last check: {detail}"),
}


def tool_findings(registry: Registry, period_start: datetime, period_end: datetime) -> list[Finding]:
    """Connected MCP tools seen by the mcp_tool_contracts checks in the period, and who approved changes."""
    from ragops.registry.models import McpToolCheck, McpToolReview

    with registry.session() as s:
        checks = s.scalars(select(McpToolCheck).where(McpToolCheck.ts >= period_start, McpToolCheck.ts < period_end)
                           .order_by(McpToolCheck.id)).all()
        reviews = s.scalars(select(McpToolReview).where(McpToolReview.ts >= period_start, McpToolReview.ts < period_end,
                                                        McpToolReview.action != "diff")).all()
    newest = {(c.server_url, c.tool): c for c in checks}
    findings = []
    for (server, tool), c in sorted(newest.items()):
        evidence = {"server_url": server, "checked_at": c.ts.isoformat(), "state": c.state, "contract": c.contract}
        if c.state in TOOL_FINDINGS:
            kind, severity, text = TOOL_FINDINGS[c.state]
            findings.append(Finding(kind, severity, text.format(tool=tool, server=server, detail=c.detail), "",
                                    evidence | {"diff": c.diff[:10]}))
        if c.contract == "failed" and c.state != "down":
            failed = [p for p in c.probes if not p.get("ok")]
            findings.append(Finding("tool_contract_failing", "high", f"{tool} fails its contract: " + "; ".join(
                f"{p['name']}: {', '.join(p['problems'])}" for p in failed)[:500], "", evidence))
        elif c.contract == "held" and c.state == "unchanged":  # held for its contract, so the check did not call it
            findings.append(Finding("tool_held", "high", f"{tool} is held and was not called: {c.detail}"[:500], "",
                                    evidence))
    for r in reviews:
        findings.append(Finding("tool_approved", "info", f"{r.actor} {'approved a change of' if r.action == 'approve' else 'pinned'} "
                                f"{r.tool} on {r.ts:%Y-%m-%d}", "", {"server_url": r.server_url} | dict(r.detail)))
    return findings


def run_audit(settings, period_start: datetime, period_end: datetime, *, registry: Registry | None = None,
              permissions: Permissions | None = None) -> AuditReport:
    registry = registry or Registry(settings.registry_url)
    permissions = permissions if permissions is not None else Permissions.load(settings.mcp_permissions)
    with registry.session() as s:
        rows = s.scalars(select(McpAccessLog).where(McpAccessLog.ts >= period_start, McpAccessLog.ts < period_end)).all()
        last = s.scalars(select(AuditRun).order_by(AuditRun.id.desc()).limit(1)).first()
        previous = dict(last.permissions_snapshot) if last else None
    current = snapshot(permissions)
    findings = (grant_findings(permissions, period_end) + usage_findings(permissions, rows)
                + drift_findings(previous, current) + tool_findings(registry, period_start, period_end))
    findings.sort(key=lambda f: (-SEVERITIES.index(f.severity), f.kind, f.client))
    report = AuditReport(0, period_start.isoformat(), period_end.isoformat(), findings)
    with registry.session() as s:
        run = AuditRun(period_start=period_start, period_end=period_end, permissions_snapshot=current, counts=report.counts)
        s.add(run)
        s.flush()
        s.add_all(AuditFinding(run_id=run.id, kind=f.kind, severity=f.severity, client=f.client, message=f.message,
                               evidence=f.evidence) for f in findings)
        report.run_id = run.id
    return report


def fail_on_critical(report: AuditReport) -> None:
    critical = [f for f in report.findings if f.severity == "critical"]
    if critical:
        raise CriticalFindings(f"{len(critical)} critical MCP audit findings: " + "; ".join(f.message for f in critical))


def previous_month(moment: datetime) -> tuple[datetime, datetime]:
    """The calendar month before `moment` (the audit's period when run on the 1st)."""
    end = moment.astimezone(timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (end - timedelta(days=1)).replace(day=1)
    return start, end
