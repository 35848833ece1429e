"""
### content_gaps

The monthly content-gap report: the questions users asked in the last 30 days that the assistant refused
(`no_results`) or that users voted down, embedded with the index's model and clustered (HDBSCAN). Clusters are
ranked by how many users they affect, named by their distinctive terms, and shown with representative questions,
the documents nearest to them (where an answer would belong) and their trend against the 30 days before. Probe
traffic and questions past their retention period are left out. The report is stored in the registry (the RAG Ops
page shows the newest) and posted to Slack. Before the first refresh the run is skipped with that reason.

**When**: the 1st of each month at 07:00 UTC, over the period that ends at the run's logical date; and on demand.

**Params**: `period` (e.g. 30d, 7d).

**Slack**: the five largest gaps, each with its users, questions, trend, example questions and the nearest
document. What to do with them: docs/content-gaps.md.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from _ragops_airflow import cron, default_args, settings, skipped_until_first_refresh


@dag(
    schedule=cron("0 7 1 * *"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["ragops", "monitoring", "content"],
    doc_md=__doc__,
    params={"period": Param("30d", type="string", title="Period", description="e.g. 30d, 7d")},
)
def content_gaps():
    @task
    def find_and_post(params=None, data_interval_end=None) -> dict:
        from ragops.gaps import run_gaps
        from ragops.monitoring.review import parse_window
        from ragops.registry import Registry
        from ragops.registry.db import require_first_refresh

        cfg = settings()
        with skipped_until_first_refresh():
            require_first_refresh(Registry(cfg.registry_url), "the content-gap report")
        report = run_gaps(cfg, parse_window(params["period"]), data_interval_end)  # the run's interval, not now()
        return {"questions": report.questions, "clusters": len(report.clusters),
                "top": [c.name for c in report.clusters[:5]]}

    find_and_post()


content_gaps()
