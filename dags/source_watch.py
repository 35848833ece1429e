"""
### source_watch

The cheap change detector for `document_refresh`: every 10 minutes it scans the source's change journal (a local
folder: a stat of every file, no read) and fingerprints only what it logged since the last refresh; a source without
a feed, or a feed that cannot vouch for every change, is fingerprinted in full (no parsing, no embedding). Only when a document was added, changed or deleted does it emit
the `ragops_source_changed` asset, which starts a refresh. Versions already quarantined are ignored, so a bad
file does not trigger a refresh every 10 minutes. Until the first `document_refresh` has succeeded there is nothing
to compare with (that first refresh indexes everything): the check is skipped, with that reason.

**Params**: `source` (URI; empty = `RAGOPS_SOURCE`). **Slack**: an alert if the source cannot be listed.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from _ragops_airflow import SOURCE_CHANGED, cron, default_args, optional_text, settings, skipped_until_first_refresh


@dag(
    schedule=cron("*/10 * * * *"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["ragops", "ingest"],
    doc_md=__doc__,
    params={"source": optional_text("Source URI", "empty = RAGOPS_SOURCE")},
)
def source_watch():
    @task.short_circuit
    def source_changed(params=None) -> bool:
        from ragops.ingest.refresh import detect_changes

        with skipped_until_first_refresh():
            counts = detect_changes(settings(), source_uri=params["source"] or None)
        print(f"source compared with the index: {counts}")
        return bool(counts["added"] or counts["changed"] or counts["deleted"])

    @task(outlets=[SOURCE_CHANGED])
    def announce_change() -> None:
        """Emitting the asset event is the whole job: document_refresh is scheduled on it."""

    source_changed() >> announce_change()


source_watch()
