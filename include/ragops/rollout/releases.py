"""Switching the live collection to the one a release pins (promotion and rollback)."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from ragops.index import open_catalog, open_store
from ragops.registry import Registry
from ragops.registry.db import resolve_index_version
from ragops.registry.models import Chunk, Document, IndexVersion, RefreshRun
from ragops.releases import ReleaseError


def adopt_collection(settings, registry: Registry, index_version_id: int) -> int:
    """Make the collection of `index_version_id` the live one that refreshes write to; returns the live version.

    The registry's document and chunk rows are rebuilt from that collection. Fingerprints come from the build's
    manifest when there is one; otherwise they are left empty, so the next refresh re-reads every document
    (embeddings are cached, so that costs parsing, not encoding).
    """
    with registry.session() as s:
        target = resolve_index_version(s, index_version_id)
        if target is None:
            raise ReleaseError(f"index version {index_version_id} does not exist")
        live = s.scalars(select(IndexVersion).where(IndexVersion.status == "live").order_by(IndexVersion.id.desc())).first()
        if live is not None and live.collection == target.collection:
            return live.id
        run = s.get(RefreshRun, target.refresh_run_id) if target.refresh_run_id else None
        fingerprints = dict((run.plan or {}).get("fingerprints", {})) if run else {}
        collection, store_version, target_id = target.collection, target.store_version, target.id
    store = open_store(settings, collection, read_only_version=store_version)
    try:
        rows = store.rows(["chunk_id", "doc_uri", "chunk_hash", "ordinal", "heading", "title"])
    finally:
        store.close()
    open_catalog(settings).promote(collection, store_version)  # the backend's pointer first (Weaviate's alias)
    with registry.session() as s:
        s.execute(delete(Chunk))
        s.execute(delete(Document))
        docs: dict[str, dict] = {}
        for r in rows:
            d = docs.setdefault(r["doc_uri"], {"title": r["title"], "n": 0})
            d["n"] += 1
        for uri, d in docs.items():
            s.add(Document(uri=uri, fingerprint=fingerprints.get(uri, ""), size_bytes=0, title=d["title"] or "",
                           n_chunks=d["n"]))
        s.flush()
        s.add_all(Chunk(chunk_id=r["chunk_id"], doc_uri=r["doc_uri"], chunk_hash=r["chunk_hash"], ordinal=r["ordinal"],
                        heading=r["heading"], n_tokens=0) for r in rows)
        s.execute(update(IndexVersion).where(IndexVersion.status == "live").values(status="retired"))
        s.execute(update(IndexVersion).where(IndexVersion.id == target_id).values(status="live"))
    return target_id
