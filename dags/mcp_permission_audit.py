"""
### mcp_permission_audit

Monthly review of the MCP permissions file (`RAGOPS_MCP_PERMISSIONS`) and the MCP access log of the previous
calendar month. Findings, each with a severity and its evidence: grants never used (least privilege), wildcard
or over-broad grants, write or destructive tools granted widely, expired or soon-expiring tokens, tokens never
used, spikes of denied calls from one client, calls from unknown, removed or revoked clients, and drift since the
last audit. Findings are stored in the registry and posted to Slack; a critical finding fails the run.

**When**: the 1st of each month at 04:00 UTC, and on demand.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from _ragops_airflow import cron, default_args, settings


@dag(
    schedule=cron("0 4 1 * *"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["ragops", "audit"],
    doc_md=__doc__,
)
def mcp_permission_audit():
    @task
    def audit(data_interval_end=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from ragops.audit.analysis import CriticalFindings, fail_on_critical, previous_month, run_audit
        from ragops.notify import build_notifier
        from ragops.notify.blocks import audit_report

        cfg = settings()
        report = run_audit(cfg, *previous_month(data_interval_end))
        build_notifier(cfg).send(audit_report(report.to_dict()))
        try:
            fail_on_critical(report)
        except CriticalFindings as exc:
            raise AirflowFailException(str(exc)) from exc
        return report.to_dict()["counts"]

    audit()


mcp_permission_audit()
