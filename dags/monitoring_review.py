"""
### monitoring_review

The daily review of response times, error rates and system health, from the serving app's request events and
the `health_probe` DAG's probes: request count, p50/p95/p99 latency (of answers: refusals and clients that left
are left out), error rate, fallback rate by code, rate-limited requests, disconnects (499) and truncated answers,
per variant (stable and canary); SLO checks (`RAGOPS_SLO_P95_LATENCY_MS`, `RAGOPS_SLO_ERROR_RATE`,
`RAGOPS_SLO_AVAILABILITY`); and unusual errors even inside the SLOs (today's error, fallback and disconnect rates
against the previous seven days, error kinds not seen before).

**When**: daily at 06:00 UTC, over the 24 hours before the run's logical date. **Params**: `window` (e.g. 24h).

**Privacy**: a second task clears the text of questions, searched queries and feedback comments older than
`RAGOPS_QUESTION_RETENTION_DAYS` before the run's logical date (counts, ratings and scores stay; docs/privacy.md).

**Slack**: the daily digest with a chart of latency and errors per hour; an alert with the numbers for each SLO
that was breached.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from _ragops_airflow import cron, default_args, settings


@dag(
    schedule=cron("0 6 * * *"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["ragops", "monitoring"],
    doc_md=__doc__,
    params={"window": Param("24h", type="string", title="Window", description="e.g. 24h, 90m, 7d")},
)
def monitoring_review():
    @task
    def review_and_post(params=None, data_interval_end=None) -> dict:
        from ragops.monitoring.report import post_digest
        from ragops.monitoring.review import review

        cfg = settings()
        result = review(cfg, params["window"], end=data_interval_end)  # the run's interval, never now()
        return post_digest(cfg, result) | {"requests": result.overall["requests"]}

    @task
    def purge_question_text(data_interval_end=None) -> dict:
        from ragops.feedback.retention import cutoff, purge
        from ragops.registry import Registry

        cfg = settings()
        registry = Registry(cfg.registry_url)
        try:  # the run's interval, never now(): a rerun clears the same rows, which are already clear
            return purge(registry, cutoff(cfg, data_interval_end)).to_dict()
        finally:
            registry.dispose()

    review_and_post()
    purge_question_text()


monitoring_review()
