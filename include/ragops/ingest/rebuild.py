"""Rebuilding an unreadable index from the registry's documents and the sources, into a new collection.

`ragops doctor --repair` calls this when the live collection cannot be read in full (truncated or missing data files,
a manifest naming files that are gone). Under the refresh lease it re-reads every document from the source the live
version was built from, parses, chunks and embeds it again (the embedding cache spares the model what it encoded
before), writes a NEW collection, reads that back in full, and only then makes it live through the refresh's own
commit: the backend's live pointer, then the registry's documents, chunks and live `index_versions` row, fenced by the
lease. The damaged collection is never written; once the new one is live it is moved aside, kept whole.

A document the registry indexes that the source no longer has, or that no longer parses, stops the repair before
anything is written and names it, unless the operator lets the repair go without it (`--allow-mass-delete`).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, update

from ragops.config import Settings
from ragops.errors import RagopsError, RefreshBlocked, RefreshConflict, SourceUnavailable, StoreUnavailable
from ragops.index import IndexStore, open_catalog, open_store
from ragops.ingest import runs
from ragops.ingest.collections import _build_config
from ragops.ingest.embedding import Embedder, resolve_precision
from ragops.ingest.integrity import read_error
from ragops.ingest.refresh import LOCK, Refresher
from ragops.registry import Registry, registry_lock
from ragops.registry.db import live_index_version
from ragops.registry.lease import lease_settings
from ragops.registry.models import Document, IndexVersion, RefreshRun, Release

log = logging.getLogger(__name__)
NAMED = 20  # documents named in an error message; the counts are always whole


class RepairImpossible(RagopsError):
    """The index cannot be rebuilt (its documents are gone from the source); the live version was not touched."""

    code = "repair_impossible"
    exit_code = 8


def rebuild_index(settings: Settings, registry: Registry, *, embedder: Embedder | None = None,
                  allow_missing: bool = False) -> dict:
    """Rebuild the unreadable live collection into a new one and make that live; returns what was done and where the
    damaged collection went. RefreshConflict while another run holds the refresh lease."""
    started = time.perf_counter()
    with registry_lock(registry, LOCK, **lease_settings(settings)) as lease:
        runs.sweep_abandoned(registry, lease.owner, timedelta(seconds=settings.refresh_stale_after_s))
        damaged = _damaged_live(settings, registry)  # again under the lease: a refresh may have changed it meanwhile
        cfg = settings.model_copy(update=damaged.pop("build"))
        if embedder is not None and (embedder.model_name, embedder.precision) != (
                cfg.embedding_model, resolve_precision(cfg.embedding_precision)):
            embedder = None  # the collection was built with another model: rebuild it with that one
        collection = f"chunks_{datetime.now(timezone.utc):%Y%m%d%H%M%S}_repair"
        store = open_store(cfg, collection)
        if store.exists():
            raise RefreshConflict(f"the collection {collection!r} exists already; run the repair again")
        refresher = Refresher(cfg, registry, store=store, embedder=embedder, verify=_read_back(cfg))
        try:  # the guard is applied below, after each missing document has been named
            prepared = refresher.prepare(damaged["source"], full=True, allow_mass_delete=True, lease=lease)
        except SourceUnavailable as exc:
            raise RepairImpossible(f"cannot rebuild the index: the source {damaged['source']} cannot be read ({exc}); "
                                   f"the {damaged['documents']} documents of index version {damaged['index_version']} "
                                   "must be re-read from it. The live index version is unchanged.") from exc
        with runs.failures_recorded(registry, prepared.run_id):
            dropped = _require_sources(registry, prepared.run_id, damaged, allow_missing)
        report = refresher.finish(prepared, lease)
        repinned = _repin_releases(registry, damaged["collection"], report.index_version)
        where = _set_aside(settings, damaged["collection"])
    log.warning("rebuilt the unreadable index collection %r as %r (index version %s); the damaged one: %s",
                damaged["collection"], collection, report.index_version, where)
    return {"run_id": report.run_id, "index_version": report.index_version, "collection": collection,
            "source": damaged["source"], "documents": report.documents["added"] + report.documents["changed"],
            "chunks": report.chunks, "dropped": dropped, "quarantine": report.quarantine, "damaged": damaged,
            "releases": repinned, "set_aside": where, "duration_s": round(time.perf_counter() - started, 3)}


def _damaged_live(settings: Settings, registry: Registry) -> dict:
    with registry.session() as s:
        live = live_index_version(s)
        if live is None:
            raise RepairImpossible("there is no live index version to rebuild: run `ragops refresh` first")
        run = s.get(RefreshRun, live.refresh_run_id) if live.refresh_run_id else None
        damaged = {"index_version": live.id, "collection": live.collection, "store_version": live.store_version,
                   "source": run.source if run is not None and run.source else settings.source,
                   "documents": s.scalar(select(func.count()).select_from(Document)),
                   "build": _build_config(s, live.collection)}
    error = read_error(open_store(settings, damaged["collection"]))
    if error is None:
        raise RefreshConflict(f"the live collection {damaged['collection']!r} reads in full now (repaired by another "
                              "run?); nothing to rebuild: run `ragops doctor` again")
    return damaged | {"error": error[:2000]}


def _require_sources(registry: Registry, run_id: int, damaged: dict, allow_missing: bool) -> list[str]:
    """Every document the registry indexes must be rebuilt; else RepairImpossible naming them (or, allowed, dropped)."""
    with registry.session() as s:
        run = s.get(RefreshRun, run_id)
        plan = dict(run.plan)
        registered = set(s.scalars(select(Document.uri)))
        gone = sorted(plan["deleted"])  # the new collection is empty, so "deleted" is exactly what the source lacks
        failing = {q["uri"]: q["reason"] for q in plan["quarantined"] if q["uri"] in registered}
        built = plan["added"] + plan["changed"]
        # Allowed to go without them, the commit drops the failing ones from the registry too: the index lost them.
        s.execute(update(RefreshRun).where(RefreshRun.id == run_id).values(
            plan=plan | {"kind": "repair", "replaces": {k: damaged[k] for k in ("index_version", "collection")},
                         "deleted": sorted(set(gone) | set(failing))}))
    problems = []
    if gone:
        problems.append(f"{len(gone)} of the {len(registered)} documents it indexes are gone from the source "
                        f"{damaged['source']}: " + ", ".join(gone[:NAMED]) + (" ..." if len(gone) > NAMED else ""))
    if failing:
        shown = [f"{u} ({r})" for u, r in sorted(failing.items())[:NAMED]]
        problems.append(f"{len(failing)} no longer pass parsing or validation: " + ", ".join(shown)
                        + (" ..." if len(failing) > NAMED else ""))
    unchanged = f"The live index version {damaged['index_version']} is unchanged."
    if not built:
        raise RepairImpossible("cannot rebuild the index: nothing in the source can be indexed; "
                               + "; ".join(problems or ["the source lists no documents"]) + ". " + unchanged)
    if problems and not allow_missing:
        raise RepairImpossible("cannot rebuild the index whole: " + "; ".join(problems) + ". Restore them and run "
                               "`ragops doctor --repair` again, or add --allow-mass-delete to rebuild without them. "
                               + unchanged)
    guard = plan.get("guard") or {}
    if guard.get("overridden") and not allow_missing:  # whole, yet the source lost content since the last refresh
        raise RefreshBlocked(f"cannot rebuild the index from the source as it is now: {guard['after']} documents and "
                             f"{guard['chunks_after']} chunks against the {guard['baseline']} documents and "
                             f"{guard['chunk_baseline']} chunks the index held, more than the shrinkage guard allows. "
                             "Check the source, then add --allow-mass-delete to rebuild from it as it is. " + unchanged)
    return gone + sorted(failing)


def _repin_releases(registry: Registry, damaged: str, index_version: int) -> list[str]:
    """Releases that pinned the damaged collection now pin the rebuilt one: the same documents, built the same way."""
    with registry.session() as s:
        pinned = select(IndexVersion.id).where(IndexVersion.collection == damaged)
        names = sorted(s.scalars(select(Release.name).where(Release.index_version_id.in_(pinned))))
        if names:
            s.execute(update(Release).where(Release.index_version_id.in_(pinned))
                      .values(index_version_id=index_version))
    return names


def _read_back(settings: Settings):
    """The check between the write and the promotion: the new collection reads in full and holds what was written."""

    def verify(store: IndexStore, version: int, chunk_ids: set[str]) -> None:
        written = open_store(settings, store.collection, read_only_version=version)
        try:
            error = read_error(written)
            found = written.chunk_ids() if error is None else set()
        finally:
            written.close()
        if error is None and found != chunk_ids:
            error = f"it holds {len(found)} chunks where {len(chunk_ids)} were written"
        if error is not None:
            raise StoreUnavailable(f"the rebuilt collection {store.collection!r} did not read back ({error}); it is "
                                   "left for inspection and the live index is unchanged")

    return verify


def _set_aside(settings: Settings, collection: str) -> str:
    """Move the damaged collection out of the way, kept; a backend that cannot move one leaves it, no longer live."""
    set_aside = getattr(open_catalog(settings), "set_aside", None)  # LanceDB only: a Weaviate collection has no rename
    if set_aside is None:
        return f"left in place as the retired collection {collection!r}"
    try:
        return set_aside(collection)
    except StoreUnavailable as exc:  # the new index is live already; the operator moves the old one by hand
        log.warning("the rebuilt index is live, but the damaged collection stays where it was: %s", exc)
        return f"left in place, not moved ({exc})"
