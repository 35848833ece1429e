"""The monthly audit use case, one function for the CLI and the mcp_permission_audit DAG: analyse, post, then fail."""

from __future__ import annotations

from datetime import datetime

from ragops.audit.analysis import AuditReport, CriticalFindings, fail_on_critical, run_audit
from ragops.notify import build_notifier
from ragops.notify.blocks import audit_report
from ragops.registry import Registry


def audit_period(settings, start: datetime, end: datetime, *, registry: Registry | None = None,
                 notifier=None) -> AuditReport:
    """Audit the period, post the findings, and raise CriticalFindings (carrying `.report`) when any is critical."""
    report = run_audit(settings, start, end, registry=registry)
    (notifier or build_notifier(settings)).send(audit_report(report.to_dict()))
    try:
        fail_on_critical(report)
    except CriticalFindings as exc:
        exc.report = report  # the caller still shows what was found
        raise
    return report
