"""The refresh runner: prepare (plan, validate, chunk, stage) -> embed batches -> commit (one index write).

The three steps are separate so the Airflow DAG can fan the embedding out over workers; `run()` does all
three in one process for the CLI. The live index is written once, in `commit`, under a registry lock.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable

from sqlalchemy import delete, select, update

from ragops.config import Settings
from ragops.errors import RagopsError, RefreshConflict
from ragops.index import IndexedChunk, IndexStore, open_store
from ragops.ingest.chunking import chunk_document
from ragops.ingest.embedding import EmbeddingCache, Embedder
from ragops.ingest.parsing import parse
from ragops.ingest.planner import check_guards, indexed_fingerprints, known_bad, plan_refresh
from ragops.ingest.validation import DocumentFacts, validate_documents
from ragops.registry import Registry, registry_lock
from ragops.registry.db import live_index_version, require_first_refresh
from ragops.registry.models import Chunk as ChunkRow
from ragops.registry.models import Document, IndexVersion, Quarantine, RefreshRun, StagedChunk
from ragops.sources import Source, SourceDocument

log = logging.getLogger(__name__)
LOCK = "refresh"


@dataclass
class PreparedRefresh:
    run_id: int
    batches: list[int]
    to_embed: int
    plan: dict[str, int]
    quarantined: list[dict]


@dataclass
class RefreshReport:
    run_id: int
    documents: dict[str, int]
    chunks: dict[str, int]
    index_version: int | None
    duration_s: float
    quarantine: list[dict] = field(default_factory=list)
    changed: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _decode(doc: SourceDocument) -> tuple[str | None, bool]:
    """The text and whether the bytes look binary; None text when they are not UTF-8."""
    binary = b"\x00" in doc.content[:8192]
    try:
        return doc.content.decode("utf-8-sig"), binary
    except UnicodeDecodeError:
        return None, binary


def process_documents(settings: Settings, embedder: Embedder, listed: dict[str, SourceDocument],
                      uris: list[str]) -> tuple[dict[str, list], dict[str, str], dict[str, str]]:
    """Decode, parse, chunk and validate documents: (chunks by uri, titles by uri, quarantine reasons by uri)."""
    max_tokens = settings.chunk_max_tokens or embedder.max_tokens
    facts, chunks_by_doc, titles = [], {}, {}
    for uri in uris:
        doc = listed[uri]
        text, binary = _decode(doc)
        chunks, text_chars = [], 0
        if text is not None and not binary and doc.size_bytes <= settings.max_document_bytes:
            parsed = parse(text, uri)
            text_chars, titles[uri] = parsed.text_chars, parsed.title
            chunks = chunk_document(parsed, uri, max_tokens, embedder.count_tokens) if text_chars else []
        chunks_by_doc[uri] = chunks
        facts.append(DocumentFacts(uri, doc.size_bytes, text is not None, binary, text_chars, len(chunks)))
    return chunks_by_doc, titles, validate_documents(facts, settings.max_document_bytes)


class Refresher:
    def __init__(self, settings: Settings, registry: Registry | None = None, store: IndexStore | None = None,
                 embedder: Embedder | None = None):
        self.settings = settings
        self.registry = registry or Registry(settings.registry_url)
        self.embedder = embedder or Embedder(settings.embedding_model, settings.embed_batch_size)
        self.cache = EmbeddingCache(self.registry, settings.embedding_model)
        self._store = store

    @property
    def store(self) -> IndexStore:
        """The live collection: refreshes keep writing to whichever collection was last promoted."""
        if self._store is None:
            with self.registry.session() as s:
                live = live_index_version(s)
            self._store = open_store(self.settings, live.collection if live else "chunks")
        return self._store

    # -- step 1 ---------------------------------------------------------------------------------
    def prepare(self, source_uri: str | None = None, *, full: bool = False, allow_mass_delete: bool = False) -> PreparedRefresh:
        uri = source_uri or self.settings.source
        with self.registry.session() as s:
            base = live_index_version(s)
            run = RefreshRun(source=uri, full=full, base_index_version=base.id if base else None)
            s.add(run)
        try:
            return self._prepare(run.id, Source(uri), full, allow_mass_delete)
        except RagopsError as exc:
            with self.registry.session() as s:
                status = "blocked" if exc.code == "refresh_blocked" else "failed"
                s.execute(update(RefreshRun).where(RefreshRun.id == run.id).values(
                    status=status, error=str(exc), finished_at=datetime.now(timezone.utc)))
            raise

    def _prepare(self, run_id: int, source: Source, full: bool, allow_mass_delete: bool) -> PreparedRefresh:
        listed = {d.uri: d for d in source.documents()}
        indexed = indexed_fingerprints(self.registry)
        plan = plan_refresh({u: d.fingerprint for u, d in listed.items()}, indexed, full=full)
        check_guards(plan, len(listed), len(indexed), self.settings.mass_delete_ratio, allow_mass_delete)

        chunks_by_doc, titles, reasons = process_documents(self.settings, self.embedder, listed, plan.to_process)
        good = [u for u in plan.to_process if u not in reasons]
        staged = [c for u in good for c in chunks_by_doc[u]]
        to_embed = self.cache.missing([c.chunk_hash for c in staged])
        batch_of = {h: i // self.settings.dag_batch_chunks for i, h in enumerate(to_embed)}
        quarantined = [{"uri": u, "reason": r} for u, r in reasons.items()]
        with self.registry.session() as s:
            for q in quarantined:
                s.add(Quarantine(uri=q["uri"], fingerprint=listed[q["uri"]].fingerprint, reason=q["reason"], refresh_run_id=run_id))
            s.add_all(
                StagedChunk(run_id=run_id, chunk_id=c.chunk_id, doc_uri=c.doc_uri, chunk_hash=c.chunk_hash, ordinal=c.ordinal,
                            heading=c.heading, title=titles.get(c.doc_uri, ""), text=c.text, n_tokens=c.n_tokens,
                            batch=batch_of.get(c.chunk_hash, -1))
                for c in staged
            )
            run = s.get(RefreshRun, run_id)
            run.plan = {
                "added": [u for u in plan.added if u in good], "changed": [u for u in plan.changed if u in good],
                "deleted": plan.deleted, "unchanged": len(plan.unchanged), "quarantined": quarantined,
                "fingerprints": {u: listed[u].fingerprint for u in good}, "sizes": {u: listed[u].size_bytes for u in good},
                "to_embed": len(to_embed),
            }
        for q in quarantined:
            log.warning("quarantined %s: %s", q["uri"], q["reason"])
        n_batches = (len(to_embed) + self.settings.dag_batch_chunks - 1) // self.settings.dag_batch_chunks
        counts = {k: len(run.plan[k]) for k in ("added", "changed", "deleted")} | {"unchanged": len(plan.unchanged)}
        log.info("refresh run %s planned: %s, %s quarantined; %s new chunks to embed in %s batches", run_id,
                 ", ".join(f"{n} {k}" for k, n in counts.items()), len(quarantined), len(to_embed), n_batches)
        return PreparedRefresh(run_id, list(range(n_batches)), len(to_embed), counts, quarantined)

    # -- step 2 ---------------------------------------------------------------------------------
    def embed_batch(self, run_id: int, batch: int, progress: bool = False) -> int:
        """Embed one batch of a prepared run into the shared cache; returns how many chunks were encoded."""
        with self.registry.session() as s:
            rows = s.execute(select(StagedChunk.chunk_hash, StagedChunk.text).where(
                StagedChunk.run_id == run_id, StagedChunk.batch == batch)).all()
        texts = dict(rows)
        missing = self.cache.missing(list(texts))  # a retried task skips what it already stored
        if not missing:
            return 0
        vectors = self.embedder.encode([texts[h] for h in missing], progress=progress)
        self.cache.put_many(dict(zip(missing, vectors)))
        return len(missing)

    # -- step 3 ---------------------------------------------------------------------------------
    def commit(self, run_id: int) -> RefreshReport:
        with registry_lock(self.registry, LOCK):
            return self._commit(run_id)

    def _commit(self, run_id: int) -> RefreshReport:
        with self.registry.session() as s:
            run = s.get(RefreshRun, run_id)
            if run is None or run.status != "planned":
                raise RefreshConflict(f"refresh run {run_id} is not a planned run (status: {getattr(run, 'status', None)})")
            live = live_index_version(s)
            if (live.id if live else None) != run.base_index_version:
                raise RefreshConflict(f"the index changed since run {run_id} was planned; start a new refresh")
            staged = s.scalars(select(StagedChunk).where(StagedChunk.run_id == run_id).order_by(StagedChunk.doc_uri, StagedChunk.ordinal)).all()
            plan = dict(run.plan)
            touched = plan["added"] + plan["changed"]
            old_ids = set(s.scalars(select(ChunkRow.chunk_id).where(ChunkRow.doc_uri.in_(touched + plan["deleted"])))) if touched or plan["deleted"] else set()
            started = run.started_at

        vectors = self.cache.get_many([c.chunk_hash for c in staged])
        late = [c for c in staged if c.chunk_hash not in vectors]
        if late:  # a batch that never ran (or a cache wiped meanwhile) is embedded here, not silently dropped
            encoded = self.embedder.encode([c.text for c in late])
            fresh = dict(zip([c.chunk_hash for c in late], encoded))
            self.cache.put_many(fresh)
            vectors.update(fresh)

        changed = bool(touched or plan["deleted"])
        new_ids = {c.chunk_id for c in staged}
        version_id = live.id if live else None
        if changed:
            upserts = [IndexedChunk(c.chunk_id, c.doc_uri, c.chunk_hash, c.ordinal, c.heading, c.title, c.text,
                                    vectors[c.chunk_hash]) for c in staged]
            store_version = self.store.apply(upserts, replace_docs=touched, delete_docs=plan["deleted"])
            version_id = self._record(run_id, plan, staged, store_version)
        with self.registry.session() as s:
            s.execute(delete(StagedChunk).where(StagedChunk.run_id == run_id))
            report = RefreshReport(
                run_id=run_id,
                documents={"added": len(plan["added"]), "changed": len(plan["changed"]), "deleted": len(plan["deleted"]),
                           "unchanged": plan["unchanged"], "quarantined": len(plan["quarantined"])},
                chunks={"embedded": plan["to_embed"] + len(late), "reused": len(staged) - plan["to_embed"] - len(late),
                        "deleted": len(old_ids - new_ids)},
                index_version=version_id,
                duration_s=round(time.time() - _ts(started), 3),
                quarantine=plan["quarantined"],
                changed=changed,
            )
            s.execute(update(RefreshRun).where(RefreshRun.id == run_id).values(
                status="succeeded", report=report.to_dict(), finished_at=datetime.now(timezone.utc)))
        return report

    def _record(self, run_id: int, plan: dict, staged: list[StagedChunk], store_version: int) -> int:
        """Write what the index now holds into the registry, in one transaction."""
        touched = plan["added"] + plan["changed"]
        by_doc: dict[str, list[StagedChunk]] = {}
        for c in staged:
            by_doc.setdefault(c.doc_uri, []).append(c)
        with self.registry.session() as s:
            if touched or plan["deleted"]:
                s.execute(delete(ChunkRow).where(ChunkRow.doc_uri.in_(touched + plan["deleted"])))
                s.execute(delete(Document).where(Document.uri.in_(plan["deleted"])))
            for uri in touched:
                chunks = by_doc.get(uri, [])
                s.merge(Document(uri=uri, fingerprint=plan["fingerprints"][uri], size_bytes=plan["sizes"][uri],
                                 title=chunks[0].title if chunks else "", n_chunks=len(chunks), refresh_run_id=run_id,
                                 indexed_at=datetime.now(timezone.utc)))
            s.flush()
            s.add_all(ChunkRow(chunk_id=c.chunk_id, doc_uri=c.doc_uri, chunk_hash=c.chunk_hash, ordinal=c.ordinal,
                               heading=c.heading, n_tokens=c.n_tokens) for c in staged)
            s.flush()
            n_docs = s.query(Document).count()
            n_chunks = s.query(ChunkRow).count()
            s.execute(update(IndexVersion).where(IndexVersion.status == "live").values(status="retired"))
            version = IndexVersion(store=self.settings.store, collection=self.store.collection, store_version=store_version,
                                   embedding_model=self.settings.embedding_model, n_documents=n_docs, n_chunks=n_chunks,
                                   status="live", refresh_run_id=run_id)
            s.add(version)
            s.flush()
            return version.id

    # -- all three, in one process ----------------------------------------------------------------
    def run(self, source_uri: str | None = None, *, full: bool = False, allow_mass_delete: bool = False,
            on_progress: Callable[[int, int], None] | None = None) -> RefreshReport:
        with registry_lock(self.registry, LOCK):
            prepared = self.prepare(source_uri, full=full, allow_mass_delete=allow_mass_delete)
            for i, batch in enumerate(prepared.batches):
                self.embed_batch(prepared.run_id, batch)
                if on_progress:
                    on_progress(i + 1, len(prepared.batches))
            return self._commit(prepared.run_id)


def detect_changes(settings: Settings, registry: Registry | None = None, source_uri: str | None = None) -> dict[str, int]:
    """The cheap change detector: fingerprints only, no parsing; known-bad (quarantined) versions are ignored.

    Raises FirstRefreshPending before the first successful refresh, which indexes everything anyway.
    """
    registry = registry or Registry(settings.registry_url)
    require_first_refresh(registry, "the change detector")
    source = Source(source_uri or settings.source)
    listed = {d.uri: d.fingerprint for d in source.documents()}
    bad = known_bad(registry)
    indexed = indexed_fingerprints(registry)
    # A version already quarantined counts as "no news": the indexed (last good) version stands for it.
    seen = {u: indexed.get(u) if (u, f) in bad else f for u, f in listed.items()}
    plan = plan_refresh({u: f for u, f in seen.items() if f is not None}, indexed)
    return plan.counts()


def _ts(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
