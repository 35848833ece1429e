"""`ragops doctor`: the index checked against the registry, on a real LanceDB index and registry."""

from sqlalchemy import delete, select

from ragops.index import open_store
from ragops.ingest.doctor import check, repair
from ragops.ingest.refresh import Refresher
from ragops.registry.models import Chunk, Document, RefreshRun


def test_a_consistent_index_is_ok(settings, corpus, embedder):
    refresher = Refresher(settings, embedder=embedder)
    refresher.run()
    report = check(settings, refresher.registry)
    assert report.ok and report.problems() == []
    assert report.documents == {"registry": 6, "index": 6} and report.index_version == 1


def test_ghosts_lost_and_drifted_documents_and_abandoned_runs_are_found_then_repaired(settings, corpus, embedder):
    refresher = Refresher(settings, embedder=embedder)
    refresher.run()
    notes, page, ops = ((corpus / n).as_uri() for n in ("notes.txt", "page.html", "ops.rst"))
    with refresher.registry.session() as s:
        s.execute(delete(Document).where(Document.uri == notes))  # the registry forgot it: a ghost in the index
        first = s.scalars(select(Chunk).where(Chunk.doc_uri == ops)).first()
        first.chunk_id = "0" * 32  # the registry and the index disagree on its chunks
    refresher.store.apply([], replace_docs=[], delete_docs=[page])  # the index lost it
    (corpus / "new.md").write_text("# New\n\nstaged by a run that was killed")
    from types import SimpleNamespace

    refresher.prepare(lease=SimpleNamespace(owner="gone-host:1:feedface"))

    report = check(settings, refresher.registry)
    assert not report.ok
    assert (report.ghosts, report.lost, report.drifted) == ([notes], [page], [ops])
    assert report.counts["abandoned_runs"] == 1 and report.counts["staged_chunks"] > 0
    assert len(report.problems()) == 4

    fixed = repair(settings, registry=refresher.registry, embedder=embedder)
    assert fixed.ok, fixed.problems()
    assert fixed.repaired["before"]["ghosts"] == 1
    assert fixed.documents == {"registry": 7, "index": 7}
    with refresher.registry.session() as s:
        assert "planned" not in set(s.scalars(select(RefreshRun.status)))


def test_ghosts_gone_from_the_source_are_deleted_by_the_repair(settings, corpus, embedder):
    refresher = Refresher(settings, embedder=embedder)
    refresher.run()
    notes = (corpus / "notes.txt").as_uri()
    with refresher.registry.session() as s:
        s.execute(delete(Document).where(Document.uri == notes))
    (corpus / "notes.txt").unlink()
    assert check(settings, refresher.registry).ghosts == [notes]
    fixed = repair(settings, registry=refresher.registry, embedder=embedder)
    assert fixed.ok and fixed.repaired["refresh"]["documents"]["deleted"] == 1
    assert notes not in {r["doc_uri"] for r in open_store(settings).rows(["doc_uri"])}
