"""Incremental refresh behaviour on a real LanceDB index and registry (SQLite, and Postgres when configured)."""

import pytest
from sqlalchemy import func, select

from support import index_state
from ragops.errors import RefreshBlocked, RefreshConflict, SourceUnavailable
from ragops.index import open_store
from ragops.ingest.refresh import Refresher, detect_changes
from ragops.registry import registry_lock
from ragops.registry.models import Chunk, IndexVersion, Quarantine, RefreshRun


def _registry_chunk_ids(registry):
    with registry.session() as s:
        return set(s.scalars(select(Chunk.chunk_id)))


def test_first_refresh_indexes_every_document(refresher, settings):
    report = refresher.run()
    assert report.documents == {"added": 6, "changed": 0, "deleted": 0, "unchanged": 0, "quarantined": 0}
    assert report.chunks["embedded"] > 0 and report.index_version == 1
    assert {cid for cid, _, _ in index_state(settings)} == _registry_chunk_ids(refresher.registry)
    again = refresher.run()
    assert again.documents["unchanged"] == 6 and again.chunks == {"embedded": 0, "reused": 0, "deleted": 0}
    assert again.index_version == 1 and not again.changed


def test_editing_one_paragraph_embeds_only_its_chunks(refresher, settings, corpus):
    long_doc = corpus / "guide" / "long.md"
    long_doc.write_text("# Long\n\n" + "\n\n".join(f"Paragraph {i}. " + "content " * 90 for i in range(10)))
    refresher.run()
    before = index_state(settings)
    text = long_doc.read_text().replace("Paragraph 7. content", "Paragraph 7. edited content")
    long_doc.write_text(text)
    report = refresher.run()
    after = index_state(settings)
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
    assert any(d == uri for _, d, _ in index_state(settings))
    (corpus / "notes.txt").unlink()
    report = refresher.run()
    assert report.documents["deleted"] == 1 and report.chunks["deleted"] >= 1
    assert all(d != uri for _, d, _ in index_state(settings))
    with refresher.registry.session() as s:
        assert s.scalar(select(func.count()).select_from(Chunk).where(Chunk.doc_uri == uri)) == 0


def test_empty_or_missing_source_is_refused(refresher, settings, corpus, tmp_path):
    refresher.run()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RefreshBlocked, match="no documents"):
        refresher.run(empty.as_uri())
    with pytest.raises(SourceUnavailable):
        refresher.run((tmp_path / "gone").as_uri())
    assert len(index_state(settings)) > 0


def test_corrupt_files_are_quarantined_and_last_good_version_stays(refresher, settings, corpus):
    refresher.run()
    good_uri = (corpus / "notes.txt").as_uri()
    before = [row for row in index_state(settings) if row[1] == good_uri]
    (corpus / "notes.txt").write_bytes(b"\xff\xfe\x00binary\x00junk")
    (corpus / "empty.md").write_text("")
    (corpus / "latin.md").write_bytes("# Caf\xe9\n\ncaf\xe9 cr\xe8me".encode("latin-1"))
    (corpus / "new.md").write_text("# New\n\nA brand new page about canaries.")
    report = refresher.run()
    reasons = {q["uri"].rsplit("/", 1)[-1]: q["reason"] for q in report.quarantine}
    assert set(reasons) == {"notes.txt", "empty.md", "latin.md"}
    assert "binary" in reasons["notes.txt"] and "UTF-8" in reasons["latin.md"]
    assert reasons["empty.md"].startswith("empty (0 bytes)")  # not "or over the size limit" (issue 22)
    assert report.documents["added"] == 1 and report.documents["quarantined"] == 3
    assert [row for row in index_state(settings) if row[1] == good_uri] == before
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


def test_refresh_with_the_registry_on_postgres(postgres_url, settings, corpus, embedder):
    pg = settings.model_copy(update={"database_url": postgres_url})
    refresher = Refresher(pg, embedder=embedder)
    first = refresher.run()
    (corpus / "notes.txt").write_text("# Slack\n\nReports now go to a new channel.\n")
    second = refresher.run()
    assert first.documents["added"] == 6 and second.documents["changed"] == 1
    assert second.index_version == first.index_version + 1
    assert {cid for cid, _, _ in index_state(pg)} == _registry_chunk_ids(refresher.registry)
    refresher.registry.dispose()


# -- failures are recorded; abandoned runs are swept (findings 6 and 11) -------------------------------------------

def _runs(registry):
    with registry.session() as s:
        return {r.id: (r.status, r.error or "") for r in s.scalars(select(RefreshRun))}


def _staged(registry) -> int:
    from ragops.registry.models import StagedChunk

    with registry.session() as s:
        return s.scalar(select(func.count()).select_from(StagedChunk))


def test_a_refresh_that_fails_records_it_and_leaves_nothing_staged(refresher, settings, corpus):
    from ragops.errors import StoreUnavailable

    refresher.run()
    (corpus / "notes.txt").write_text("# Slack\n\nReports go to a new channel now.\n")
    [data] = list((settings.lance_dir / "chunks.lance" / "data").glob("*.lance"))
    with open(data, "r+b") as f:
        f.truncate(1000)  # a damaged data file: LanceDB raises RuntimeError
    with pytest.raises(StoreUnavailable, match="index store failed"):
        Refresher(settings, embedder=refresher.embedder).run()
    status, error = _runs(refresher.registry)[2]
    assert status == "failed" and "index store failed" in error
    assert _staged(refresher.registry) == 0


def test_abandoned_runs_are_failed_and_their_staged_rows_removed(refresher, settings, corpus):
    from datetime import datetime, timedelta, timezone
    from types import SimpleNamespace

    from ragops.registry.models import Lock

    (corpus / "new.md").write_text("# New\n\nsomething to stage")
    dead = SimpleNamespace(owner="gone-host:77:deadbeef")  # a CLI refresh killed on another host
    killed = refresher.prepare(lease=dead).run_id
    idle = refresher.prepare().run_id  # a DAG run whose workers died
    fresh = refresher.prepare().run_id  # a DAG run still between its tasks
    now = datetime.now(timezone.utc)
    with refresher.registry.session() as s:
        s.add(Lock(name="refresh", owner=dead.owner, expires_at=now - timedelta(seconds=1)))  # stopped renewing
        s.get(RefreshRun, idle).heartbeat_at = now - timedelta(seconds=settings.refresh_stale_after_s + 60)
    assert _staged(refresher.registry) > 0
    refresher.run()
    runs = _runs(refresher.registry)
    assert runs[killed][0] == "failed" and "gone-host:77" in runs[killed][1]
    assert runs[idle][0] == "failed" and "no progress" in runs[idle][1]
    assert runs[fresh][0] == "planned"
    from ragops.registry.models import StagedChunk

    with refresher.registry.session() as s:
        assert set(s.scalars(select(StagedChunk.run_id).distinct())) == {fresh}


# -- the guard remembers (finding 8) ---------------------------------------------------------------------------------

def _forget_registry(settings):
    for path in settings.home.glob("registry.sqlite*"):
        path.unlink()


def _index_docs(settings):
    return {d for _, d, _ in index_state(settings)}


def test_documents_the_registry_lost_are_removed_from_the_index(settings, corpus, embedder):
    for i in range(4):
        (corpus / f"extra{i}.md").write_text(f"# Extra {i}\n\nfiller text number {i}")
    Refresher(settings, embedder=embedder).run()
    _forget_registry(settings)  # the registry is emptied; the index keeps all 10 documents
    (corpus / "extra0.md").unlink()
    report = Refresher(settings, embedder=embedder).run()
    assert report.documents["deleted"] == 1 and report.documents["added"] == 9
    assert (corpus / "extra0.md").as_uri() not in _index_docs(settings)
    assert len(_index_docs(settings)) == 9


def test_removing_ghosts_is_under_the_guard(settings, corpus, embedder):
    for i in range(4):
        (corpus / f"extra{i}.md").write_text(f"# Extra {i}\n\nfiller text number {i}")
    Refresher(settings, embedder=embedder).run()
    _forget_registry(settings)
    for i in range(3):
        (corpus / f"extra{i}.md").unlink()
    with pytest.raises(RefreshBlocked, match="delete 3 of 10"):
        Refresher(settings, embedder=embedder).run()
    assert len(_index_docs(settings)) == 10
    Refresher(settings, embedder=embedder).run(allow_mass_delete=True)
    assert len(_index_docs(settings)) == 7


def test_a_lost_index_is_indexed_again(refresher, settings):
    import shutil

    refresher.run()
    before = index_state(settings)
    shutil.rmtree(settings.lance_dir)
    report = Refresher(settings, embedder=refresher.embedder).run()
    assert report.documents["changed"] == 6 and report.chunks["embedded"] == 0  # vectors come from the cache
    assert index_state(settings) == before


# -- one document cannot hold the refresh (finding 2) -------------------------------------------------------------

def test_a_document_over_its_parse_budget_is_quarantined(settings, corpus, embedder):
    class SteppingClock:
        now = 0.0

        def __call__(self):
            self.now += 1.0
            return self.now

    (corpus / "slow.md").write_text("# Slow\n\n" + "line\n" * 20_000)
    budgeted = settings.model_copy(update={"parse_budget_s": 5})
    report = Refresher(budgeted, embedder=embedder, parse_clock=SteppingClock()).run()
    assert report.quarantine == [{"uri": (corpus / "slow.md").as_uri(), "reason": "parse took too long (over its budget of 5 s)"}]
    assert report.documents["added"] == 6


def test_the_parse_budget_covers_chunking(settings, corpus, embedder):
    """A document that parses within its budget but chunks slowly (issue 22: a long heading, many paragraphs) is
    quarantined like one that parses slowly, and the refresh goes on."""
    class SteppingClock:
        now = 0.0

        def __call__(self):
            self.now += 1.0
            return self.now

    (corpus / "chunky.md").write_text("# Chunky\n\n" + "\n\n".join(f"paragraph {i}" for i in range(400)))
    budgeted = settings.model_copy(update={"parse_budget_s": 5})
    report = Refresher(budgeted, embedder=embedder, parse_clock=SteppingClock()).run()
    assert report.quarantine == [{"uri": (corpus / "chunky.md").as_uri(), "reason": "parse took too long (over its budget of 5 s)"}]
    assert report.documents["added"] == 6


def test_hostile_titles_and_names_fit_the_registry_on_postgres(postgres_url, settings, corpus, embedder):
    pg = settings.model_copy(update={"database_url": postgres_url})
    (corpus / "long.md").write_text("# " + "T" * 2000 + "\n\nA heading longer than any title column.")
    (corpus / "it's \"quoted\".md").write_text("# Quotes\n\nA name with quotes.")
    refresher = Refresher(pg, embedder=embedder)
    report = refresher.run()
    assert report.documents["added"] == 8 and report.documents["quarantined"] == 0
    refresher.registry.dispose()


@pytest.fixture(scope="module")
def tiny_server_model(tmp_path_factory):
    from sentence_transformers import SentenceTransformer

    from model_servers import tiny_sentence_transformer

    return SentenceTransformer(str(tiny_sentence_transformer(tmp_path_factory.mktemp("tiny"))), device="cpu")


@pytest.fixture
def embedding_server(tiny_server_model):
    from model_servers import ModelServer

    server = ModelServer(tiny_server_model)
    yield server
    server.close()


def _vector_dims(settings):
    return {len(r["vector"]) for r in open_store(settings).rows(["vector"])}


@pytest.mark.parametrize("steps", ["run", "dag"])
def test_a_remote_model_whose_dimension_changes_fails_the_refresh_before_writing(settings, corpus, embedding_server,
                                                                               steps):
    from ragops.errors import EmbeddingModelError
    from ragops.registry.models import EmbeddingCacheEntry, IndexVersion

    cfg = settings.model_copy(update={"embedding_endpoint": embedding_server.url, "embedding_protocol": "tei",
                                      "embedding_model": "tiny"})
    first = Refresher(cfg)
    report = first.run()
    assert report.chunks["embedded"] > 0 and _vector_dims(cfg) == {32}
    with first.registry.session() as s:
        assert s.scalars(select(IndexVersion.embedding_model)).all() == [f"tiny@tei+{embedding_server.url}"]
        assert set(s.scalars(select(EmbeddingCacheEntry.model))) == {f"tiny@tei+{embedding_server.url}"}
    index_before, store_version = index_state(cfg), open_store(cfg).version()

    (corpus / "notes.txt").write_text("# Slack\n\nReports go to a new channel now.\n")
    embedding_server.dim = 16  # the same endpoint now serves a model of another dimension
    refresher = Refresher(cfg)
    with pytest.raises(EmbeddingModelError, match=r"gives 16-dimensional vectors, but the live collection 'chunks' "
                                                  r"holds 32-dimensional ones; nothing was written"):
        if steps == "run":
            refresher.run()
        else:  # the DAG's steps: the batch task fails, and a commit (embedding what is late) fails the same way
            prepared = refresher.prepare()
            with pytest.raises(EmbeddingModelError, match="16-dimensional"):
                refresher.embed_batch(prepared.run_id, prepared.batches[0])
            refresher.commit(prepared.run_id)
    assert index_state(cfg) == index_before and open_store(cfg).version() == store_version
    assert _vector_dims(cfg) == {32}
    with refresher.registry.session() as s:
        assert set(s.scalars(select(EmbeddingCacheEntry.dim))) == {32}  # no vector of the new size was cached
        assert s.scalar(select(func.count()).select_from(IndexVersion)) == 1
    status, error = _runs(refresher.registry)[2]
    assert status == "failed" and "16-dimensional" in error and _staged(refresher.registry) == 0


def test_a_configured_dimension_guards_the_first_refresh(settings, corpus, embedding_server):
    from ragops.errors import EmbeddingModelError

    cfg = settings.model_copy(update={"embedding_endpoint": embedding_server.url, "embedding_model": "tiny",
                                      "embedding_dim": 384})
    with pytest.raises(EmbeddingModelError, match="answered 32-dimensional vectors, but 384 dimensions are expected"):
        Refresher(cfg).run()
    assert not open_store(cfg).exists()
