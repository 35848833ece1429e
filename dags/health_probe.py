"""
### health_probe

Every five minutes: probes the registry, the live index, the serving app (`RAGOPS_PUBLIC_URL`/readyz) and, when
configured, the LLM endpoint, and records each probe for the daily review. Alerts once when a component goes
down and once when it recovers, not on every probe. Until the first `document_refresh` has succeeded there is no
index to probe and the serving app cannot be ready: the probe is skipped, with that reason, and alerts nothing.

**Slack**: "X is down" and "X recovered" messages.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task

from _ragops_airflow import cron, default_args, settings, skipped_until_first_refresh, timeout


@dag(
    schedule=cron("*/5 * * * *"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=2, retry_delay=timedelta(seconds=30)),
    tags=["ragops", "monitoring"],
    doc_md=__doc__,
    dagrun_timeout=timedelta(minutes=4),
)
def health_probe():
    @task(execution_timeout=timeout("health.probe"))
    def probe() -> dict:
        from ragops.monitoring.report import probe_and_alert

        cfg = settings()
        with skipped_until_first_refresh():
            return probe_and_alert(cfg, serving_url=cfg.public_url)

    probe()


health_probe()
