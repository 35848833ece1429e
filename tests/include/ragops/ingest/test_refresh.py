"""Incremental refresh behaviour on a real LanceDB index and registry (SQLite, and Postgres when configured)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from ragops.errors import RefreshBlocked, RefreshConflict, SourceUnavailable
from ragops.index import open_store
from ragops.ingest.refresh import Refresher, detect_changes
from ragops.registry import Registry, registry_lock
from ragops.registry.models import Chunk, IndexVersion, Quarantine, RefreshRun


@pytest.fixture
def refresher(settings, corpus, embedder):
    return Refresher(settings, embedder=embedder)


def _index_state(settings):
    rows = open_store(settings).rows(["chunk_id", "doc_uri", "chunk_hash"])
    return sorted((r["chunk_id"], r["doc_uri"], r["chunk_hash"]) for r in rows)


def _registry_chunk_ids(registry):
    with registry.session() as s:
        return set(s.scalars(select(Chunk.chunk_id)))


def test_first_refresh_indexes_every_document(refresher, settings):
    report = refresher.run()
    assert report.documents == {"added": 6, "changed": 0, "deleted": 0, "unchanged": 0, "quarantined": 0}
    assert report.chunks["embedded"] > 0 and report.index_version == 1
    assert {cid for cid, _, _ in _index_state(settings)} == _registry_chunk_ids(refresher.registry)
    again = refresher.run()
    assert again.documents["unchanged"] == 6 and again.chunks == {"embedded": 0, "reused": 0, "deleted": 0}
    assert again.index_version == 1 and not again.changed


def test_editing_one_paragraph_embeds_only_its_chunks(refresher, settings, corpus):
    long_doc = corpus / "guide" / "long.md"
    long_doc.write_text("# Long\n\n" + "\n\n".join(f"Paragraph {i}. " + "content " * 90 for i in range(10)))
    refresher.run()
    before = _index_state(settings)
    text = long_doc.read_text().replace("Paragraph 7. content", "Paragraph 7. edited content")
    long_doc.write_text(text)
    report = refresher.run()
    after = _index_state(settings)
    new_chunks = set(after) - set(before)
    assert report.documents["changed"] == 1 and report.documents["unchanged"] == 6
    assert report.chunks["embedded"] == len(new_chunks) == 1
    assert report.chunks["deleted"] == 1
    assert len(after) == len(before)


def test_deleting_a_document_removes_its_chunks(refresher, settings, corpus):
    for i in range(5):
        (corpus / f"extra{i}.md").write_text(f"# Extra {i}\n\nfiller text number {i}")
    refresher.run()
    uri = (corpus / "notes.txt").as_uri()
    assert any(d == uri for _, d, _ in _index_state(settings))
    (corpus / "notes.txt").unlink()
    report = refresher.run()
    assert report.documents["deleted"] == 1 and report.chunks["deleted"] >= 1
    assert all(d != uri for _, d, _ in _index_state(settings))
    with refresher.registry.session() as s:
        assert s.scalar(select(func.count()).select_from(Chunk).where(Chunk.doc_uri == uri)) == 0


def test_mass_delete_guard_leaves_the_index_untouched(refresher, settings, corpus):
    refresher.run()
    before = _index_state(settings)
    for name in ("notes.txt", "page.html"):
        (corpus / name).unlink()
    with pytest.raises(RefreshBlocked, match="2 of 6"):
        refresher.run()
    assert _index_state(settings) == before
    with refresher.registry.session() as s:
        assert s.scalars(select(RefreshRun.status).order_by(RefreshRun.id.desc())).first() == "blocked"
    report = refresher.run(allow_mass_delete=True)
    assert report.documents["deleted"] == 2


def test_empty_or_missing_source_is_refused(refresher, settings, corpus, tmp_path):
    refresher.run()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RefreshBlocked, match="no documents"):
        refresher.run(empty.as_uri())
    with pytest.raises(SourceUnavailable):
        refresher.run((tmp_path / "gone").as_uri())
    assert len(_index_state(settings)) > 0


def test_corrupt_files_are_quarantined_and_last_good_version_stays(refresher, settings, corpus):
    refresher.run()
    good_uri = (corpus / "notes.txt").as_uri()
    before = [row for row in _index_state(settings) if row[1] == good_uri]
    (corpus / "notes.txt").write_bytes(b"\xff\xfe\x00binary\x00junk")
    (corpus / "empty.md").write_text("")
    (corpus / "latin.md").write_bytes("# Caf\xe9\n\ncaf\xe9 cr\xe8me".encode("latin-1"))
    (corpus / "new.md").write_text("# New\n\nA brand new page about canaries.")
    report = refresher.run()
    reasons = {q["uri"].rsplit("/", 1)[-1]: q["reason"] for q in report.quarantine}
    assert set(reasons) == {"notes.txt", "empty.md", "latin.md"}
    assert "binary" in reasons["notes.txt"] and "UTF-8" in reasons["latin.md"] and "size" in reasons["empty.md"]
    assert report.documents["added"] == 1 and report.documents["quarantined"] == 3
    assert [row for row in _index_state(settings) if row[1] == good_uri] == before
    with refresher.registry.session() as s:
        assert s.scalar(select(func.count()).select_from(Quarantine)) == 3
    assert detect_changes(settings, refresher.registry) == {"added": 0, "changed": 0, "deleted": 0, "unchanged": 7}


def test_a_second_refresh_cannot_run_at_once(refresher):
    with registry_lock(refresher.registry, "refresh"):
        pass
    prepared = refresher.prepare()
    with refresher.registry.session() as s:
        from ragops.registry.models import Lock
        from datetime import datetime, timedelta, timezone

        s.add(Lock(name="refresh", owner="another-host:42", expires_at=datetime.now(timezone.utc) + timedelta(hours=1)))
    with pytest.raises(RefreshConflict, match="another-host"):
        refresher.commit(prepared.run_id)


def test_a_stale_plan_is_refused(refresher, corpus):
    refresher.run()
    stale = refresher.prepare(full=True)
    (corpus / "x.md").write_text("# X\n\nnew")
    refresher.run()
    with pytest.raises(RefreshConflict, match="changed since"):
        refresher.commit(stale.run_id)


def test_killed_refresh_then_rerun_matches_one_clean_run(settings, corpus, tmp_path, embedder):
    """Kill a CLI refresh mid-embedding with SIGKILL, run again, compare with a clean run elsewhere."""
    for i in range(30):
        (corpus / f"bulk{i}.md").write_text(f"# Bulk {i}\n\n" + "\n\n".join(f"Para {j} of {i}. " + "text " * 120 for j in range(8)))
    env = dict(os.environ, RAGOPS_HOME=str(settings.home), RAGOPS_SOURCE=settings.source, RAGOPS_DAG_BATCH_CHUNKS="16",
               RAGOPS_EMBED_BATCH_SIZE="8")
    proc = subprocess.Popen([sys.executable, "-m", "ragops", "refresh", "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    registry = Registry(settings.registry_url)
    deadline = time.time() + 120
    from ragops.registry.models import EmbeddingCacheEntry

    while time.time() < deadline:  # wait until some, not all, vectors are cached
        with registry.session() as s:
            cached = s.scalar(select(func.count()).select_from(EmbeddingCacheEntry))
        if cached >= 16:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert cached >= 16, "the refresh never got to embedding"
    assert not (settings.lance_dir / "chunks.lance").exists() or _index_state(settings) == []

    rerun = subprocess.run([sys.executable, "-m", "ragops", "refresh", "--json"], env=env,
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    report = json.loads(rerun.stdout)
    assert report["chunks"]["reused"] >= 16  # vectors from before the kill were not embedded again

    clean = settings.model_copy(update={"home": tmp_path / "clean"})
    Refresher(clean, embedder=embedder).run()
    assert _index_state(settings) == _index_state(clean)
    assert {cid for cid, _, _ in _index_state(settings)} == _registry_chunk_ids(registry)
    with registry.session() as s:
        assert s.scalar(select(func.count()).select_from(IndexVersion)) == 1


def test_refresh_with_the_registry_on_postgres(postgres_url, settings, corpus, embedder):
    pg = settings.model_copy(update={"database_url": postgres_url})
    refresher = Refresher(pg, embedder=embedder)
    first = refresher.run()
    (corpus / "notes.txt").write_text("# Slack\n\nReports now go to a new channel.\n")
    second = refresher.run()
    assert first.documents["added"] == 6 and second.documents["changed"] == 1
    assert second.index_version == first.index_version + 1
    assert {cid for cid, _, _ in _index_state(pg)} == _registry_chunk_ids(refresher.registry)
    refresher.registry.dispose()
