"""Moving the live pointer between collections (promotion, rollback) without re-reading the corpus.

Every collection keeps a manifest (`collection_documents`): each document it holds with the fingerprint it was built
from. Switching the pointer records the outgoing collection's manifest (exactly what the registry says it holds),
rebuilds the registry's document rows from the incoming one's, and then runs an ordinary incremental refresh into
it: only the documents that changed since that collection was last written are parsed and embedded again.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

from sqlalchemy import delete, insert, select, update

from ragops.config import Settings
from ragops.errors import RagopsError
from ragops.index import open_store
from ragops.ingest.embedding import Embedder
from ragops.registry import Registry, registry_lock
from ragops.registry.db import live_index_version, resolve_index_version
from ragops.registry.models import Chunk, CollectionDocument, Document, IndexVersion, RefreshRun

log = logging.getLogger(__name__)
LOCK = "refresh"  # the refresh lock: no refresh commits while the pointer moves


class SwitchError(RagopsError):
    code = "switch_failed"


def record_manifest(session, collection: str, documents: list[dict]) -> None:
    """Replace the manifest of `collection` with `documents` (uri, fingerprint, size_bytes, title, n_chunks)."""
    session.execute(delete(CollectionDocument).where(CollectionDocument.collection == collection))
    if documents:
        now = datetime.now(timezone.utc)
        session.execute(insert(CollectionDocument), [d | {"collection": collection, "recorded_at": now}
                                                     for d in documents])


def switch_live(settings: Settings, registry: Registry, index_version_id: int, *, embedder: Embedder | None = None,
                catch_up: bool = True) -> dict:
    """Make the collection of `index_version_id` live and bring it up to date with the source (changed documents only).

    A catch-up that fails (the source is down, a guard refuses) leaves the switch in place and is reported: a rollback
    must not wait for the source.
    """
    started = time.perf_counter()
    with registry_lock(registry, LOCK):
        switched = _switch(settings, registry, index_version_id)
    result = {"index_version": switched["index_version"], "collection": switched["collection"],
              "switched": switched["switched"], "caught_up": None, "catch_up_error": None}
    if catch_up and switched["switched"]:
        from ragops.ingest.refresh import Refresher

        cfg = settings.model_copy(update=switched["build"])
        if embedder is None or embedder.model_name != cfg.embedding_model:
            embedder = None
        try:
            report = Refresher(cfg, registry, embedder=embedder).run()
            result["caught_up"] = report.documents | {"embedded": report.chunks["embedded"]}
            result["index_version"] = report.index_version or result["index_version"]
        except RagopsError as exc:
            log.warning("the switch to %s stands, but its catch-up refresh failed: %s", switched["collection"], exc)
            result["catch_up_error"] = str(exc)
    result["duration_s"] = round(time.perf_counter() - started, 3)
    return result


def _switch(settings: Settings, registry: Registry, index_version_id: int) -> dict:
    with registry.session() as s:
        target = resolve_index_version(s, index_version_id)
        if target is None:
            raise SwitchError(f"index version {index_version_id} does not exist")
        live = live_index_version(s)
        build = _build_config(s, target.collection)
        if live is not None and live.collection == target.collection:
            return {"index_version": live.id, "collection": live.collection, "switched": False, "build": build}
        if live is not None:
            documents = s.scalars(select(Document)).all()
            record_manifest(s, live.collection, [
                {"uri": d.uri, "fingerprint": d.fingerprint, "size_bytes": d.size_bytes, "title": d.title,
                 "n_chunks": d.n_chunks} for d in documents])
        manifest = {m.uri: m for m in s.scalars(select(CollectionDocument)
                                                .where(CollectionDocument.collection == target.collection))}
        collection, store_version, target_id = target.collection, target.store_version, target.id
    store = open_store(settings, collection)
    try:
        store.checkout(store_version)
        rows = store.rows(["chunk_id", "doc_uri", "chunk_hash", "ordinal", "heading", "title"])
    finally:
        store.close()
    with registry.session() as s:
        s.execute(delete(Chunk))
        s.execute(delete(Document))
        counts: dict[str, int] = {}
        titles: dict[str, str] = {}
        for r in rows:
            counts[r["doc_uri"]] = counts.get(r["doc_uri"], 0) + 1
            titles.setdefault(r["doc_uri"], r["title"] or "")
        for uri, n in counts.items():
            known = manifest.get(uri)  # a document missing from the manifest gets no fingerprint: it is re-read
            s.add(Document(uri=uri, fingerprint=known.fingerprint if known else "", n_chunks=n,
                           size_bytes=known.size_bytes if known else 0, title=titles[uri]))
        s.flush()
        s.add_all(Chunk(chunk_id=r["chunk_id"], doc_uri=r["doc_uri"], chunk_hash=r["chunk_hash"], ordinal=r["ordinal"],
                        heading=r["heading"], n_tokens=0) for r in rows)
        s.execute(update(IndexVersion).where(IndexVersion.status == "live").values(status="retired"))
        s.execute(update(IndexVersion).where(IndexVersion.id == target_id).values(status="live"))
    return {"index_version": target_id, "collection": collection, "switched": True, "build": build}


def _build_config(session, collection: str) -> dict:
    """The embedding model and chunking a collection was built with (a catch-up must write it the same way)."""
    first = session.scalars(select(IndexVersion).where(IndexVersion.collection == collection)
                            .order_by(IndexVersion.id).limit(1)).first()
    config = {"embedding_model": first.embedding_model} if first else {}
    run = session.get(RefreshRun, first.refresh_run_id) if first and first.refresh_run_id else None
    overrides = dict((run.plan or {}).get("overrides", {})) if run else {}
    if overrides.get("chunk_max_tokens"):
        config["chunk_max_tokens"] = overrides["chunk_max_tokens"]
    return config
