"""audit: the MCP permission and access-log audit."""

from __future__ import annotations

from datetime import datetime, timezone

from ragops.config import Settings


def audit(args):
    from ragops.audit.analysis import CriticalFindings, fail_on_critical, previous_month, run_audit
    from ragops.monitoring.review import parse_window
    from ragops.notify import build_notifier
    from ragops.notify.blocks import audit_report

    settings = Settings()
    now = datetime.now(timezone.utc)
    start, end = (now - parse_window(args.since), now) if args.since else previous_month(now)
    report = run_audit(settings, start, end)
    build_notifier(settings).send(audit_report(report.to_dict()))
    payload = report.to_dict()
    human = "\n".join(f"[{f.severity}] {f.message}" for f in report.findings) or "no findings"
    try:
        fail_on_critical(report)
    except CriticalFindings as exc:
        payload["error"] = exc.to_dict()["error"]
        return payload, human, exc.exit_code
    return payload, human, 0


def add_parsers(sub, common) -> None:
    p = sub.add_parser("audit", parents=[common], help="audit MCP permissions and the access log")
    p.add_argument("--since", help="period length ending now, e.g. 30d (default: the previous calendar month)")
    p.set_defaults(handler=audit)
