"""
### audit_anchor

Daily check of the MCP access log against the insider who can write the registry. It runs `ragops audit verify`
(the hash chain, each row's MAC, and every anchor published so far), then signs the chain head with the audit key
(`RAGOPS_AUDIT_SIGNING_KEY` or `RAGOPS_AUDIT_SIGNING_KEY_FILE`, which the registry never holds) and publishes it as
a new anchor: appended to the anchor file (`RAGOPS_AUDIT_ANCHOR_FILE`, default `audit-anchors.jsonl` under
`RAGOPS_HOME`) and posted to Slack whole, so a copy lives where the database's users cannot reach it.

A log that fails verification posts an alert with each problem (`anchor_mismatch`, `truncated`, `wiped`,
`forged_row`, ...), publishes no anchor, and fails the run. Without a key the head is published unsigned, with a
warning. Running it again only adds an anchor of the same head: harmless.

**When**: daily at 03:30 UTC, and on demand. **Connections**: `slack_api_default` (optional).
"""

from __future__ import annotations

from airflow.sdk import dag, task

from _ragops_airflow import cron, default_args, settings


@dag(
    schedule=cron("30 3 * * *"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["ragops", "audit"],
    doc_md=__doc__,
)
def audit_anchor():
    @task
    def verify_and_anchor() -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from ragops.audit.anchor import AuditLogTampered, publish

        try:
            anchor, _ = publish(settings())
        except AuditLogTampered as exc:
            raise AirflowFailException(str(exc)) from exc  # alerted already; a verdict, not a glitch
        return {"seq": anchor.seq, "head_hash": anchor.head_hash, "signed": bool(anchor.signature)}

    verify_and_anchor()


audit_anchor()
