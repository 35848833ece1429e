"""Blue/green candidates: build the whole source into a new collection beside the live one, and validate it.

The same machinery as a refresh (parse, chunk, validate, the embedding cache, the store) writes a new collection and
its manifest. The live collection is never written here. A candidate that fails validation is marked `rejected`
and never becomes a release; the collection stays on disk for inspection.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from sqlalchemy import update

from ragops.config import Settings
from ragops.errors import RagopsError
from ragops.index import IndexedChunk, open_store
from ragops.ingest.collections import record_manifest
from ragops.ingest.embedding import EmbeddingCache, Embedder, check_dimensions, resolve_precision
from ragops.ingest.documents import process_documents
from ragops.registry import Registry
from ragops.registry.db import live_index_version
from ragops.registry.models import IndexVersion, RefreshRun
from ragops.sources import Source


class CandidateRejected(RagopsError):
    code = "candidate_rejected"
    exit_code = 5


@dataclass
class CandidateBuild:
    index_version_id: int
    collection: str
    embedding_model: str
    n_documents: int
    n_chunks: int
    quarantined: list[dict]
    duration_s: float

    def to_dict(self) -> dict:
        return asdict(self)


def build_candidate(settings: Settings, *, source: str | None = None, overrides: dict | None = None,
                    registry: Registry | None = None, embedder: Embedder | None = None) -> CandidateBuild:
    """A full build of the source into a new collection, with `overrides` (embedding_model, chunk_max_tokens,
    embedding_precision)."""
    started = time.perf_counter()
    cfg = settings.model_copy(update=overrides or {})
    registry = registry or Registry(cfg.registry_url)
    wanted = (cfg.embedding_model, resolve_precision(cfg.embedding_precision))
    if embedder is None or (embedder.model_name, embedder.precision) != wanted:
        embedder = Embedder.from_settings(cfg)
    uri = source or cfg.source
    listed = {d.uri: d for d in Source.from_settings(cfg, uri).documents()}
    chunks_by_doc, titles, reasons = process_documents(cfg, embedder, listed, sorted(listed))
    good = [u for u in sorted(listed) if u not in reasons]
    chunks = [c for u in good for c in chunks_by_doc[u]]
    if not chunks:
        raise CandidateRejected(f"the source {uri} produced no chunks; nothing to build")
    cache = EmbeddingCache(registry, embedder.cache_key)
    missing = cache.missing([c.chunk_hash for c in chunks])
    texts = {c.chunk_hash: c.text for c in chunks}
    fresh = dict(zip(missing, embedder.encode([texts[h] for h in missing]))) if missing else {}
    check_dimensions(list(fresh.values()), cfg.embedding_dim, embedder.model_name, "RAGOPS_EMBEDDING_DIM")
    cache.put_many(fresh)
    vectors = cache.get_many([c.chunk_hash for c in chunks])
    check_dimensions(list(vectors.values()), cfg.embedding_dim, embedder.model_name, "RAGOPS_EMBEDDING_DIM")
    collection = f"chunks_{datetime.now(timezone.utc):%Y%m%d%H%M%S}_{len(chunks)}"
    store = open_store(cfg, collection)
    store_version = store.rebuild([IndexedChunk(c.chunk_id, c.doc_uri, c.chunk_hash, c.ordinal, c.heading,
                                                titles.get(c.doc_uri, ""), c.text, vectors[c.chunk_hash]) for c in chunks])
    quarantined = [{"uri": u, "reason": r} for u, r in reasons.items()]
    with registry.session() as s:
        run = RefreshRun(source=uri, full=True, status="succeeded", finished_at=datetime.now(timezone.utc),
                         plan={"kind": "reindex", "overrides": overrides or {}, "quarantined": quarantined,
                               "fingerprints": {u: listed[u].fingerprint for u in good}})
        s.add(run)
        s.flush()
        version = IndexVersion(store=cfg.store, collection=collection, store_version=store_version,
                               embedding_model=embedder.model_name, n_documents=len(good), n_chunks=len(chunks),
                               status="candidate", refresh_run_id=run.id)
        s.add(version)
        s.flush()
        version_id = version.id
        per_doc: dict[str, int] = {}
        for c in chunks:
            per_doc[c.doc_uri] = per_doc.get(c.doc_uri, 0) + 1
        record_manifest(s, collection, [{"uri": u, "fingerprint": listed[u].fingerprint, "size_bytes": listed[u].size_bytes,
                                         "title": titles.get(u, ""), "n_chunks": per_doc.get(u, 0)} for u in good])
    return CandidateBuild(version_id, collection, embedder.model_name, len(good), len(chunks), quarantined,
                          round(time.perf_counter() - started, 2))


def validate_candidate(settings: Settings, build: CandidateBuild, registry: Registry | None = None) -> dict:
    """Counts against the live version, and Great Expectations on the candidate's chunks."""
    from ragops.ingest.validation import validate_chunks

    registry = registry or Registry(settings.registry_url)
    with registry.session() as s:
        live = live_index_version(s)
        live_docs, live_chunks = (live.n_documents, live.n_chunks) if live else (0, 0)
    problems = []
    if live_docs and build.n_documents < live_docs * (1 - settings.mass_delete_ratio):
        problems.append(f"{build.n_documents} documents against {live_docs} live (more than "
                        f"{settings.mass_delete_ratio:.0%} fewer)")
    if live_chunks and not 0.25 * live_chunks <= build.n_chunks <= 4 * live_chunks:
        problems.append(f"{build.n_chunks} chunks against {live_chunks} live (outside 0.25x-4x)")
    import pandas as pd

    table = pd.DataFrame(open_store(settings, build.collection).rows(["chunk_id", "doc_uri", "text"]),
                         columns=["chunk_id", "doc_uri", "text"])
    problems += validate_chunks(table)
    checks = {"documents": [build.n_documents, live_docs], "chunks": [build.n_chunks, live_chunks], "problems": problems}
    if problems:
        reject(registry, build.index_version_id)
        raise CandidateRejected("the candidate index failed validation: " + "; ".join(problems))
    return checks


def candidate_name(build: CandidateBuild) -> str:
    return f"reindex-v{build.index_version_id}"


def reject(registry: Registry, version_id: int) -> None:
    with registry.session() as s:
        s.execute(update(IndexVersion).where(IndexVersion.id == version_id).values(status="rejected"))
