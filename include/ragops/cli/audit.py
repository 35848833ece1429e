"""audit: the MCP permission and access-log audit."""

from __future__ import annotations

from datetime import datetime, timezone

from ragops.config import Settings


def audit(args):
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


def add_parsers(sub, common) -> None:
    p = sub.add_parser("audit", parents=[common], help="audit MCP permissions and the access log")
    p.add_argument("--since", help="period length ending now, e.g. 30d (default: the previous calendar month)")
    p.set_defaults(handler=audit)
