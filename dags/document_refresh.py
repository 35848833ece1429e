"""
### document_refresh

Keeps the knowledge base fresh: lists the source, plans an incremental refresh (added / changed / deleted /
unchanged by content fingerprint), validates documents with Great Expectations (bad ones are quarantined and
their last good version stays searchable), embeds only chunks not embedded before, and writes the index in one
commit. The live index is never touched by a run that fails or is blocked.

**When**: weekly (Monday 03:00 UTC), whenever `source_watch` sees the source change, and on demand. A fresh
install runs no past slot: its first refresh is the one `make up` triggers (or yours, from Trigger).

**Listing**: a run started by `source_watch` or by hand reads only what the source's change feed logged since the last
successful run; the weekly run lists and fingerprints the whole source (the reconciliation), as does any run whose
feed cannot vouch for every change. The run's record says which and why (`plan.listing`).

**Params**: `source` (URI; empty = `RAGOPS_SOURCE`), `full_rebuild` (re-process every document),
`allow_mass_delete` (override the guard that refuses to leave more than 20% fewer documents than the most the
index held since the last override, or to empty it).

**Lease**: `commit` holds the registry's heartbeated refresh lease; any failure is recorded on its run.

**Connections**: `slack_api_default` (optional; else `RAGOPS_SLACK_TOKEN`, else the outbox); `weaviate_default`
(optional, with `RAGOPS_STORE=weaviate`; else `RAGOPS_WEAVIATE_URL`).

**Slack**: the refresh report on success; an alert on any task failure (including a blocked refresh).

**Emits**: the `ragops_index` asset when the index changed; `evaluation` schedules on it.
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, Param, dag, task

from _ragops_airflow import INDEX_ASSET, SOURCE_CHANGED, cron, default_args, optional_text, settings, timeout


@dag(
    schedule=AssetOrTimeSchedule(timetable=cron("0 3 * * 1"), assets=SOURCE_CHANGED),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["ragops", "ingest"],
    doc_md=__doc__,
    params={
        "source": optional_text("Source URI", "empty = RAGOPS_SOURCE"),
        "full_rebuild": Param(False, type="boolean", title="Full rebuild", description="re-process every document"),
        "allow_mass_delete": Param(False, type="boolean", title="Allow mass delete",
                                   description="override the shrinkage guard (>20% below its baseline, or an empty source)"),
    },
)
def document_refresh():
    @task
    def prepare(params=None, dag_run=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from ragops.errors import RefreshBlocked
        from ragops.ingest.refresh import Refresher

        run_type = getattr(dag_run, "run_type", None)
        try:
            prepared = Refresher(settings()).prepare(
                params["source"] or None, full=params["full_rebuild"], allow_mass_delete=params["allow_mass_delete"],
                reconcile=getattr(run_type, "value", run_type) == "scheduled",  # the weekly run lists in full
            )
        except RefreshBlocked as exc:
            raise AirflowFailException(str(exc)) from exc  # retrying a guard decision changes nothing
        return {"run_id": prepared.run_id, "batches": prepared.batches, "plan": prepared.plan}

    @task
    def embedding_batches(prepared: dict) -> list[dict]:
        return [{"refresh_run": prepared["run_id"], "batch": b} for b in prepared["batches"]]

    @task(max_active_tis_per_dagrun=4, execution_timeout=timeout("refresh.embed"))
    def embed(refresh_run: int, batch: int) -> int:
        from ragops.ingest.refresh import Refresher

        return Refresher(settings()).embed_batch(refresh_run, batch)

    @task(trigger_rule="none_failed", execution_timeout=timeout("refresh.commit"))
    def commit(prepared: dict) -> dict:
        from ragops.ingest.refresh import Refresher

        return Refresher(settings()).commit(prepared["run_id"]).to_dict()

    @task.short_circuit
    def index_changed(report: dict) -> bool:
        return report["changed"]

    @task(outlets=[INDEX_ASSET])
    def publish_index(report: dict, outlet_events=None) -> None:
        outlet_events[INDEX_ASSET].extra = {"index_version": report["index_version"], "run_id": report["run_id"]}

    @task
    def post_report(report: dict, params=None) -> None:
        from ragops.notify import build_notifier
        from ragops.notify.blocks import refresh_report

        cfg = settings()
        build_notifier(cfg).send(refresh_report(report, params["source"] or cfg.source))

    prepared = prepare()
    embedded = embed.expand_kwargs(embedding_batches(prepared))
    report = commit(prepared)
    embedded >> report
    index_changed(report) >> publish_index(report)
    post_report(report)


document_refresh()
