"""
### quality_drift

Hourly: are users getting worse answers than the accepted baseline? Over the last `RAGOPS_QUALITY_WINDOW_HOURS`
(24 h) of real users' questions (probes never count), per release and variant (stable, canary), compares five live
quality signals with the baseline window: refusal rate, weak evidence and weak similarity (answers below the
baseline's 10th percentile), down-vote share, and the share of answers whose citations were opened. The test is the
canary gate's always-valid sequential test, clustered by user. The baseline is the first
`RAGOPS_QUALITY_BASELINE_DAYS` (7) days the stable release served (`RAGOPS_QUALITY_BASELINE=release`), or the days
just before the window (`trailing`). Each check is stored in `quality_checks`, keyed by the run's instant, so a
rerun replaces it; the serving app exports the newest one on /metrics (`ragops_quality_shift`), where Prometheus's
`RagopsQualityDrift` fires. Details: docs/monitoring.md#live-quality-signals.

**When**: hourly at minute 7, over the window ending at the run's logical date. No Params, no connections but
the registry and Slack.

**Slack**: "Quality drift: <signal> of release <name> (<variant>)" once a shift has crossed its boundary at
`RAGOPS_QUALITY_SUSTAIN_CHECKS` (2) consecutive checks, with baseline against now, the bound and since when; one
"Quality recovered" message when it ends.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task

from _ragops_airflow import cron, default_args, settings


@dag(
    schedule=cron("7 * * * *"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=2, retry_delay=timedelta(minutes=2)),
    tags=["ragops", "monitoring"],
    doc_md=__doc__,
    dagrun_timeout=timedelta(minutes=50),
)
def quality_drift():
    @task
    def check(data_interval_end=None) -> dict:
        from ragops.monitoring.drift import check as check_quality

        result = check_quality(settings(), end=data_interval_end)  # the run's instant, never now()
        return {"window": result["window"], "shifted": result["shifted"], "alerts": result["alerts"]}

    check()


quality_drift()
