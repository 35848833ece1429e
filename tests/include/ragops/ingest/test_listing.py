"""A refresh planned from the source's change feed: only what changed is read, and any doubt lists in full."""

import os
import shutil
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from support import index_state
from ragops.ingest.refresh import Refresher, detect_changes
from ragops.registry.models import RefreshRun
from ragops.sources import Source

HOUR_AGO = time.time() - 3600


@pytest.fixture
def settled(corpus):
    """The corpus as if written an hour ago, so no file is racy and only what a test changes is logged."""
    for path in corpus.rglob("*"):
        if path.is_file():
            os.utime(path, (HOUR_AGO, HOUR_AGO))
    return corpus


@pytest.fixture
def reads(monkeypatch):
    """The paths every refresh reads from the source, in order."""
    seen = []
    real = Source.read

    def counted(self, path):
        seen.append(path)
        return real(self, path)

    monkeypatch.setattr(Source, "read", counted)
    return seen


def last_listing(refresher) -> dict:
    with refresher.registry.session() as s:
        return s.scalars(select(RefreshRun).order_by(RefreshRun.id.desc())).first().plan["listing"]


def set_listing(refresher, **changes) -> None:
    """Edit what the newest successful run stored (a lost or corrupt cursor, an old full listing)."""
    with refresher.registry.session() as s:
        run = s.scalars(select(RefreshRun).where(RefreshRun.status == "succeeded").order_by(RefreshRun.id.desc())).first()
        run.plan = {**run.plan, "listing": {**run.plan["listing"], **changes}}


def uris(settings) -> set[str]:
    return {doc for _, doc, _ in index_state(settings)}


def test_the_first_refresh_lists_in_full_and_the_next_reads_only_the_changed_document(refresher, settled, reads):
    refresher.run()
    first = last_listing(refresher)
    assert first["mode"] == "full" and first["reason"] == "no full listing of this source is recorded"
    assert first["cursor"] and len(reads) == 6
    reads.clear()
    (settled / "notes.txt").write_text("# Slack\n\nReports go to the channel #ops-reports now.\n")
    report = refresher.run()
    listing = last_listing(refresher)
    assert listing["mode"] == "feed" and listing["since"] == first["cursor"] and listing["named"] == 1
    assert [os.path.basename(p) for p in reads] == ["notes.txt"]
    assert report.documents == {"added": 0, "changed": 1, "deleted": 0, "unchanged": 5, "quarantined": 0}
    assert listing["last_full_at"] == first["last_full_at"]
    assert report.listing == {"mode": "feed", "reason": None}


def test_a_deletion_and_a_rename_through_the_feed(refresher, settings, settled, reads):
    refresher.run()
    reads.clear()
    (settled / "ops.rst").unlink()
    os.rename(settled / "audit.adoc", settled / "permissions.adoc")
    report = refresher.run()
    assert last_listing(refresher)["mode"] == "feed"
    assert [os.path.basename(p) for p in reads] == ["permissions.adoc"]
    assert report.documents["deleted"] == 2 and report.documents["added"] == 1 and report.documents["unchanged"] == 4
    held = uris(settings)
    assert (settled / "permissions.adoc").as_uri() in held
    assert not {(settled / "ops.rst").as_uri(), (settled / "audit.adoc").as_uri()} & held
    assert detect_changes(settings, refresher.registry) == {"added": 0, "changed": 0, "deleted": 0, "unchanged": 5}


def test_a_lost_journal_lists_in_full_and_misses_nothing(refresher, settings, settled):
    refresher.run()
    shutil.rmtree(settings.home / "feeds")
    (settled / "notes.txt").unlink()
    (settled / "fresh.md").write_text("# Fresh\n\nWritten while the journal was gone.\n")
    report = refresher.run()
    listing = last_listing(refresher)
    assert listing["mode"] == "full" and "replaced" in listing["reason"]  # a new journal, a new epoch
    assert report.documents["deleted"] == 1 and report.documents["added"] == 1
    assert (settled / "fresh.md").as_uri() in uris(settings)
    refresher.run()
    assert last_listing(refresher)["mode"] == "feed"  # the full listing left a cursor of the new journal


@pytest.mark.parametrize("cursor, says", [(None, "no cursor"), ("garbage", "corrupt"),
                                          ("{epoch}:2:{offset}", "does not point at an entry")])
def test_a_lost_or_corrupt_cursor_lists_in_full_and_the_plan_is_right(refresher, settings, settled, cursor, says):
    refresher.run()
    epoch, _, offset = last_listing(refresher)["cursor"].split(":")
    set_listing(refresher, cursor=cursor and cursor.format(epoch=epoch, offset=int(offset) - 3))
    (settled / "guide" / "install.md").unlink()
    report = refresher.run()
    listing = last_listing(refresher)
    assert listing["mode"] == "full" and says in listing["reason"]
    assert report.documents["deleted"] == 1 and (settled / "guide" / "install.md").as_uri() not in uris(settings)


def test_the_periodic_reconciliation_lists_in_full(refresher, settings, settled):
    refresher.run()
    week_ago = datetime.now(timezone.utc) - timedelta(days=settings.source_full_listing_days, minutes=1)
    set_listing(refresher, last_full_at=week_ago.isoformat())
    refresher.run()
    assert "RAGOPS_SOURCE_FULL_LISTING_DAYS" in last_listing(refresher)["reason"]
    refresher.run(reconcile=True)  # the weekly DAG run asks for it whatever the age
    assert last_listing(refresher)["mode"] == "full"
    refresher.run()
    assert last_listing(refresher)["mode"] == "feed"


def test_a_failed_run_does_not_advance_the_cursor(refresher, settings, settled, monkeypatch):
    refresher.run()
    cursor = last_listing(refresher)["cursor"]
    (settled / "notes.txt").write_text("# Slack\n\nA change the failed run saw.\n")
    monkeypatch.setattr(refresher.embedder, "encode", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("down")))
    with pytest.raises(RuntimeError):
        refresher.run()
    monkeypatch.undo()
    report = refresher.run()
    assert last_listing(refresher)["since"] == cursor and report.documents["changed"] == 1


def test_a_feed_off_or_a_source_without_one_lists_in_full(refresher, settings, settled):
    refresher.run()
    off = Refresher(settings.model_copy(update={"source_feed": False}), registry=refresher.registry,
                    embedder=refresher.embedder)
    off.run()
    assert last_listing(refresher)["reason"] == "RAGOPS_SOURCE_FEED is off"


def test_a_cursor_of_another_index_version_does_not_count(refresher, settings, settled):
    """After a switch (a blue/green candidate made live, a rollback) the live version was not built by the run that
    left the cursor: the catch-up lists in full, so nothing the new live version never saw is skipped."""
    from ragops.registry.models import IndexVersion

    refresher.run()
    with refresher.registry.session() as s:  # what `switch_live` leaves: another live row, from no refresh of ours
        live = s.scalars(select(IndexVersion).where(IndexVersion.status == "live")).one()
        live.status = "retired"
        s.add(IndexVersion(store=live.store, collection=live.collection, store_version=live.store_version,
                           embedding_model=live.embedding_model, n_documents=live.n_documents,
                           n_chunks=live.n_chunks, status="live"))
    refresher.run()
    assert last_listing(refresher)["reason"] == "no full listing of this source is recorded"
    refresher.run()
    assert last_listing(refresher)["mode"] == "feed"  # a no-change run on the live version carries the cursor on
