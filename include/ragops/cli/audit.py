"""audit: the MCP permission and access-log audit."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone

from ragops.config import Settings


def audit(args):
    if args.action == "verify":
        return verify(args)
    if args.action == "anchor":
        return anchor(args)
    from ragops.audit.analysis import CriticalFindings, previous_month
    from ragops.audit.run import audit_period
    from ragops.monitoring.review import parse_window

    now = datetime.now(timezone.utc)
    start, end = (now - parse_window(args.since), now) if args.since else previous_month(now)
    failure = None
    try:
        report = audit_period(Settings(), start, end)
    except CriticalFindings as exc:
        report, failure = exc.report, exc
    payload = report.to_dict() | ({"error": failure.to_dict()["error"]} if failure else {})
    human = "\n".join(f"[{f.severity}] {f.message}" for f in report.findings) or "no findings"
    return payload, human, failure.exit_code if failure else 0


def verify(args):
    """Recompute the access log's hash chain, its MACs and its anchors; a rewrite fails with what and where it is."""
    from ragops.audit.anchor import AuditLogTampered, read_anchors, signing_key, verify_anchored
    from ragops.registry import Registry

    settings = Settings()
    key, anchors = signing_key(settings), read_anchors(settings.audit_anchor_path)
    registry = Registry(settings.registry_url)
    with registry.session() as s:
        result = verify_anchored(s, key, anchors)
    payload = result.to_dict()
    head = (f"{result.rows} rows checked against {result.anchors} anchor(s); chain head {result.head_seq} "
            f"{result.head_hash[:16]}")
    warnings = [f"warning: {w}" for w in result.warnings]
    if result.ok:
        return payload, "\n".join([f"the MCP access log is intact: {head}"] + warnings), 0
    failure = AuditLogTampered(result)
    lines = [f"the MCP access log was tampered with ({head}):"]
    lines += [f"  [{p['kind']}] {p['message']}" for p in result.problems]
    if result.total_problems > len(result.problems):
        lines.append(f"  ... {result.total_problems - len(result.problems)} more; by kind: {result.problem_counts}")
    return payload | failure.to_dict(), "\n".join(lines + warnings), failure.exit_code


def anchor(args):
    """Verify, then sign the chain head and publish it (what the audit_anchor DAG runs daily)."""
    from ragops.audit.anchor import AuditLogTampered, publish

    try:
        published, result = publish(Settings())
    except AuditLogTampered as exc:
        return exc.result.to_dict() | exc.to_dict(), str(exc), exc.exit_code
    signed = "signed" if published.signature else "UNSIGNED: no audit key configured"
    human = f"anchored row {published.seq} {published.head_hash[:16]} ({signed})"
    return result.to_dict() | {"anchor": asdict(published)}, human, 0


def add_parsers(sub, common) -> None:
    p = sub.add_parser("audit", parents=[common],
                       help="audit MCP permissions and the access log; `verify` its hash chain, `anchor` its head")
    p.add_argument("action", nargs="?", choices=["run", "verify", "anchor"], default="run",
                   help="run: the permission audit (default); verify: check the access log against its MACs and "
                        "anchors; anchor: verify, then sign and publish the chain head")
    p.add_argument("--since", help="period length ending now, e.g. 30d (default: the previous calendar month)")
    p.set_defaults(handler=audit)
