"""audit: the MCP permission and access-log audit."""

from __future__ import annotations

from datetime import datetime, timezone

from ragops.config import Settings


def audit(args):
    if args.action == "verify":
        return verify(args)
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
    """Recompute the access log's hash chain; an edited, deleted or inserted row fails with where it is."""
    from ragops.audit.chain import verify as verify_chain
    from ragops.registry import Registry

    registry = Registry(Settings().registry_url)
    with registry.session() as s:
        result = verify_chain(s)
    payload = result.to_dict()
    head = f"{result.rows} rows checked; chain head {result.head_seq} {result.head_hash[:16]}"
    if result.ok:
        return payload, f"the MCP access log is intact: {head}", 0
    payload["error"] = {"code": "audit_log_tampered",
                        "message": f"{len(result.problems)} problem(s) in the MCP access log: "
                                   + "; ".join(p["message"] for p in result.problems[:5])}
    return payload, "\n".join([f"the MCP access log was tampered with ({head}):"] + [f"  {p['message']}" for p in result.problems]), 7


def add_parsers(sub, common) -> None:
    p = sub.add_parser("audit", parents=[common], help="audit MCP permissions and the access log; `verify` its hash chain")
    p.add_argument("action", nargs="?", choices=["run", "verify"], default="run",
                   help="run: the permission audit (default); verify: check the access log for edited or deleted rows")
    p.add_argument("--since", help="period length ending now, e.g. 30d (default: the previous calendar month)")
    p.set_defaults(handler=audit)
