"""
### mcp_permission_audit

Monthly review of the MCP permissions file (`RAGOPS_MCP_PERMISSIONS`) and the MCP access log of the previous
calendar month. Findings, each with a severity and its evidence: grants never used (least privilege), wildcard
or over-broad grants, write or destructive tools granted widely, expired or soon-expiring tokens, tokens never
used, spikes of denied calls from one client, calls from unknown, removed or revoked clients, and drift since the
last audit; and the connected MCP tools seen by `mcp_tool_contracts` (changed, failing, down, never approved,
and who approved what). Findings are stored in the registry and posted to Slack; a critical finding fails the run.

**When**: the 1st of each month at 04:00 UTC, and on demand.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from _ragops_airflow import default_args, settings


@dag(
    schedule="0 4 1 * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
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

        from ragops.audit.analysis import CriticalFindings, previous_month
        from ragops.audit.run import audit_period

        try:
            return audit_period(settings(), *previous_month(data_interval_end)).to_dict()["counts"]
        except CriticalFindings as exc:
            raise AirflowFailException(str(exc)) from exc  # posted already; a verdict, not a glitch

    audit()


mcp_permission_audit()
