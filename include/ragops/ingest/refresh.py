"""The refresh runner: prepare (plan, validate, chunk, stage) -> embed batches -> commit (one index write).

The three steps are separate so the Airflow DAG can fan the embedding out over workers; `run()` does all
three in one process for the CLI. The live index is written once, in `commit`, under a registry lock.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.exc import SQLAlchemyError

from ragops.config import Settings
from ragops.errors import RefreshConflict, StoreUnavailable
from ragops.index import IndexedChunk, IndexStore, open_catalog, open_store
from ragops.ingest import listing, retention, runs
from ragops.ingest.crash_points import pause_point
from ragops.ingest.documents import process_documents
from ragops.ingest.embedding import EmbeddingCache, Embedder, check_dimensions
from ragops.ingest.planner import ChunkTally, check_guards, guard_baseline, known_bad, next_baseline, plan_refresh
from ragops.registry import Lease, Registry, registry_lock
from ragops.registry.db import live_index_version, require_first_refresh
from ragops.registry.lease import lease_settings
from ragops.registry.models import Chunk as ChunkRow
from ragops.registry.models import Document, IndexVersion, Lock, Quarantine, RefreshRun, StagedChunk
from ragops.sources import Source

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
    listing: dict = field(default_factory=dict)  # {"mode": "feed" or "full", "reason": why a full listing}

    def to_dict(self) -> dict:
        return asdict(self)


REPAIR_HINT = ("; if the index backend is up, the collection's files are damaged: `ragops doctor` confirms it and "
               "`ragops doctor --repair` rebuilds the index from the sources into a new collection")


@contextmanager
def _store_errors(action: str, reading: bool = False):
    """Index-store failures (LanceDB raises OSError or RuntimeError for damaged files) become StoreUnavailable; a read
    that fails names the repair."""
    try:
        yield
    except (OSError, RuntimeError, StoreUnavailable) as exc:
        if isinstance(exc, StoreUnavailable) and not reading:
            raise
        raise StoreUnavailable(f"the index store failed to {action}: {exc}{REPAIR_HINT if reading else ''}") from exc


class Refresher:
    def __init__(self, settings: Settings, registry: Registry | None = None, store: IndexStore | None = None,
                 embedder: Embedder | None = None, parse_clock: Callable[[], float] | None = None,
                 verify: Callable[[IndexStore, int, set[str]], None] | None = None):
        """`verify(store, version, chunk_ids)` runs after the index write and before anything is promoted (a repair)."""
        self.settings = settings
        self.verify = verify
        self.registry = registry or Registry(settings.registry_url)
        self.embedder = embedder or Embedder.from_settings(settings)
        self.cache = EmbeddingCache(self.registry, self.embedder.cache_key)
        self.parse_clock = parse_clock
        self._store = store

    @property
    def store(self) -> IndexStore:
        """The live collection: refreshes keep writing to whichever collection was last promoted."""
        if self._store is None:
            with self.registry.session() as s:
                live = live_index_version(s)
            self._store = open_store(self.settings, live.collection if live else "chunks")
        return self._store

    def _lease(self):
        return registry_lock(self.registry, LOCK, **lease_settings(self.settings))

    def _sweep(self, lease: Lease) -> list[int]:
        return runs.sweep_abandoned(self.registry, lease.owner, timedelta(seconds=self.settings.refresh_stale_after_s))

    # -- step 1 ---------------------------------------------------------------------------------
    def prepare(self, source_uri: str | None = None, *, full: bool = False, allow_mass_delete: bool = False,
                lease: Lease | None = None, force: Sequence[str] = (), reconcile: bool = False) -> PreparedRefresh:
        """Plan, validate, chunk and stage; `force` names documents to process again whatever their fingerprint.

        The plan comes from the source's change feed when it can vouch for every change (ingest/listing.py);
        `reconcile` (the weekly run) lists the whole source instead, as `full` does."""
        uri = source_uri or self.settings.source
        try:
            with self.registry.session() as s:
                base = live_index_version(s)
                run = RefreshRun(source=uri, full=full, base_index_version=base.id if base else None,
                                 lease_owner=lease.owner if lease else None, heartbeat_at=datetime.now(timezone.utc))
                s.add(run)
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"the registry cannot record a refresh run: {exc}") from exc
        with runs.failures_recorded(self.registry, run.id):
            source = Source.from_settings(self.settings, uri)
            inventory = listing.take(self.settings, self.registry, source, uri, full=full or reconcile,
                                     forced=bool(force))
            if inventory.mode == "feed" and (mismatch := self._disagreement()):
                inventory = listing.take(self.settings, self.registry, source, uri, full_because=mismatch)
            return self._prepare(run.id, inventory, full, allow_mass_delete, set(force))

    def _prepare(self, run_id: int, inventory: listing.Inventory, full: bool, allow_mass_delete: bool,
                 force: set[str]) -> PreparedRefresh:
        listed, indexed = inventory.listed, inventory.indexed
        if inventory.mode == "full":
            with _store_errors("list its documents", reading=True):
                chunks_in_index = Counter(r["doc_uri"] for r in self.store.rows(["doc_uri"]))
            in_index = set(chunks_in_index)
            # Reconcile before planning: the index may hold documents the registry lost (ghosts), and the registry
            # may name documents the index lost. Ghosts gone from the source are deleted; lost ones processed again.
            ghosts = sorted(in_index - set(indexed) - set(listed))
            lost = sorted(set(indexed) - in_index)
            present = set(indexed) | in_index
            n_current, n_chunks = len(present), chunks_in_index.total()
        else:  # from the feed: the registry's counts, and only the documents it named (reconciled at a full listing)
            chunks_in_index, n_current, n_chunks = listing.registry_counts(self.registry, [*listed, *indexed])
            ghosts, lost, present = [], [], set(indexed)
        plan = plan_refresh({u: d.fingerprint for u, d in listed.items()},
                            {u: "" if u in lost or u in force else f for u, f in indexed.items()}, full=full)
        plan.deleted = sorted(set(plan.deleted) | set(ghosts))
        plan.unchanged = inventory.n_listed - len(plan.added) - len(plan.changed)

        chunks_by_doc, titles, reasons = process_documents(self.settings, self.embedder, listed, plan.to_process,
                                                           self.parse_clock)
        good = [u for u in plan.to_process if u not in reasons]
        n_after = n_current - len(plan.deleted) + len(set(good) - present)  # deleted ones are all present
        staged = [c for u in good for c in chunks_by_doc[u]]
        replaced = set(plan.deleted) | set(good)
        kept = n_chunks - sum(chunks_in_index[u] for u in replaced)
        with self.registry.session() as s:
            live = live_index_version(s)
            baseline = guard_baseline(live.doc_baseline or live.n_documents if live else 0, n_current)
            chunks = ChunkTally(n_chunks, kept + len(staged),
                                guard_baseline(live.chunk_baseline or live.n_chunks if live else 0, n_chunks))
        overridden = check_guards(plan, n_listed=inventory.n_listed, n_current=n_current, n_after=n_after, baseline=baseline,
                                  chunks=chunks, ratio=self.settings.mass_delete_ratio,
                                  allow_mass_delete=allow_mass_delete)

        to_embed = self.cache.missing([c.chunk_hash for c in staged])
        dim = self._collection_dim() if staged else None
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
                "deleted": plan.deleted, "unchanged": plan.unchanged, "quarantined": quarantined,
                "fingerprints": {u: listed[u].fingerprint for u in good}, "sizes": {u: listed[u].size_bytes for u in good},
                "to_embed": len(to_embed), "reconciled": {"ghosts": ghosts, "lost": lost},
                "guard": {"baseline": baseline, "after": n_after, "chunk_baseline": chunks.baseline,
                          "chunks_after": chunks.after, "overridden": overridden},
                "collection": self.store.collection, "dim": dim, "listing": inventory.record,
            }
        for q in quarantined:
            log.warning("quarantined %s: %s", q["uri"], q["reason"])
        if ghosts or lost:
            log.warning("reconciled the index with the registry: %d ghost documents to delete, %d lost ones to index "
                        "again", len(ghosts), len(lost))
        n_batches = (len(to_embed) + self.settings.dag_batch_chunks - 1) // self.settings.dag_batch_chunks
        counts = {k: len(run.plan[k]) for k in ("added", "changed", "deleted")} | {"unchanged": plan.unchanged}
        log.info("refresh run %s planned from %s: %s, %s quarantined; %s new chunks to embed in %s batches", run_id,
                 "the change feed" if inventory.mode == "feed" else f"a full listing ({inventory.record['reason']})",
                 ", ".join(f"{n} {k}" for k, n in counts.items()), len(quarantined), len(to_embed), n_batches)
        return PreparedRefresh(run_id, list(range(n_batches)), len(to_embed), counts, quarantined)

    # -- step 2 ---------------------------------------------------------------------------------
    def embed_batch(self, run_id: int, batch: int, progress: bool = False) -> int:
        """Embed one batch of a prepared run into the shared cache; returns how many chunks were encoded."""
        runs.touch(self.registry, run_id)
        with self.registry.session() as s:
            rows = s.execute(select(StagedChunk.chunk_hash, StagedChunk.text).where(
                StagedChunk.run_id == run_id, StagedChunk.batch == batch)).all()
            plan = dict(s.get(RefreshRun, run_id).plan or {})
        texts = dict(rows)
        missing = self.cache.missing(list(texts))  # a retried task skips what it already stored
        if not missing:
            return 0
        vectors = self.embedder.encode([texts[h] for h in missing], progress=progress)
        check_dimensions(vectors, *self._expected_dim(plan))  # a cache entry of the wrong size would reach the index
        self.cache.put_many(dict(zip(missing, vectors)))
        pause_point(self.settings, "embedding")
        return len(missing)

    # -- step 3 ---------------------------------------------------------------------------------
    def commit(self, run_id: int) -> RefreshReport:
        with self._lease() as lease:
            runs.claim(self.registry, run_id, lease.owner)  # if this process dies now, the next holder fails the run
            self._sweep(lease)
            with runs.failures_recorded(self.registry, run_id):
                return self._commit(run_id, lease)

    def _commit(self, run_id: int, lease: Lease) -> RefreshReport:
        with self.registry.session() as s:
            run = s.get(RefreshRun, run_id)
            if run is None or run.status != "planned":
                detail = f"{run.status}: {run.error}" if run is not None and run.error else getattr(run, "status", None)
                raise RefreshConflict(f"refresh run {run_id} is not a planned run ({detail}); start a new refresh")
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
        fresh = {}
        if late:  # a batch that never ran (or a cache wiped meanwhile) is embedded here, not silently dropped
            fresh = dict(zip([c.chunk_hash for c in late], self.embedder.encode([c.text for c in late])))
        check_dimensions([*vectors.values(), *fresh.values()], *self._expected_dim(plan))
        self.cache.put_many(fresh)
        vectors.update(fresh)

        changed = bool(touched or plan["deleted"])
        new_ids = {c.chunk_id for c in staged}
        version_id = live.id if live else None
        if changed:
            upserts = [IndexedChunk(c.chunk_id, c.doc_uri, c.chunk_hash, c.ordinal, c.heading, c.title, c.text,
                                    vectors[c.chunk_hash]) for c in staged]
            lease.check()  # a holder that stalled past its lease must not write over its successor
            pause_point(self.settings, "index_write")
            with _store_errors("write the refresh"):
                store_version = self.store.apply(upserts, replace_docs=touched, delete_docs=plan["deleted"])
            pause_point(self.settings, "index_committed")
            if self.verify is not None:
                self.verify(self.store, store_version, new_ids)
            lease.check()  # nor move the live pointer after its successor has
            # The backend's live pointer (Weaviate's alias) before the registry: if recording fails, a retry converges.
            with _store_errors("promote the refresh"):
                open_catalog(self.settings).promote(self.store.collection, store_version)
            version_id = self._record(run_id, plan, staged, store_version, lease)
            retention.enforce_all(self.settings, self.registry, quiet=True)  # under the lease
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
                listing={k: (plan.get("listing") or {}).get(k) for k in ("mode", "reason")},
            )
            s.execute(update(RefreshRun).where(RefreshRun.id == run_id).values(
                status="succeeded", report=report.to_dict(), finished_at=datetime.now(timezone.utc)))
        return report

    def _record(self, run_id: int, plan: dict, staged: list[StagedChunk], store_version: int, lease: Lease) -> int:
        """Write what the index now holds into the registry, in one transaction fenced by the lease."""
        touched = plan["added"] + plan["changed"]
        by_doc: dict[str, list[StagedChunk]] = {}
        for c in staged:
            by_doc.setdefault(c.doc_uri, []).append(c)
        with self.registry.session() as s:
            fenced = s.execute(update(Lock).where(Lock.name == LOCK, Lock.owner == lease.owner)
                               .values(renewed_at=datetime.now(timezone.utc))).rowcount
            if fenced != 1:
                raise RefreshConflict(f"refresh run {run_id} lost the refresh lock before recording its index write")
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
            guard = {"baseline": n_docs, "chunk_baseline": n_chunks, "overridden": False} | (plan.get("guard") or {})
            s.execute(update(IndexVersion).where(IndexVersion.status == "live").values(status="retired"))
            version = IndexVersion(store=self.settings.store, collection=self.store.collection, store_version=store_version,
                                   embedding_model=self.embedder.model_name, n_documents=n_docs, n_chunks=n_chunks,
                                   status="live", refresh_run_id=run_id,
                                   doc_baseline=next_baseline(guard["baseline"], n_docs, guard["overridden"]),
                                   chunk_baseline=next_baseline(guard["chunk_baseline"], n_chunks, guard["overridden"]))
            s.add(version)
            s.flush()
            return version.id

    def _disagreement(self) -> str | None:
        """Why the feed cannot be trusted with the index as it is (it names source changes only), or None: the
        index must hold the chunks the registry lists, else a full listing reconciles them."""
        _, _, n_chunks = listing.registry_counts(self.registry, [])
        with _store_errors("count its chunks", reading=True):
            held = self.store.count()
        return None if held == n_chunks else f"the index holds {held} chunks and the registry lists {n_chunks}"

    def _collection_dim(self) -> int | None:
        """The dimension of the vectors the live collection holds; None while it holds none."""
        with _store_errors("read its vectors", reading=True):
            for batch in self.store.scan(["vector"], batch_rows=1):  # one row, not every vector of the collection
                for row in batch:
                    return len(row["vector"])
        return None

    def _expected_dim(self, plan: dict) -> tuple[int | None, str, str]:
        """What `check_dimensions` holds new vectors to: the live collection's vectors, else RAGOPS_EMBEDDING_DIM."""
        if plan.get("dim") is not None:
            return plan["dim"], self.embedder.model_name, f"the live collection {plan.get('collection')!r}"
        return self.settings.embedding_dim, self.embedder.model_name, "RAGOPS_EMBEDDING_DIM"

    # -- all three, in one process ----------------------------------------------------------------
    def run(self, source_uri: str | None = None, *, full: bool = False, allow_mass_delete: bool = False,
            on_progress: Callable[[int, int], None] | None = None, force: Sequence[str] = (),
            reconcile: bool = False) -> RefreshReport:
        """The whole refresh under one lease, renewed in the background while it parses and embeds."""
        with self._lease() as lease:
            self._sweep(lease)
            prepared = self.prepare(source_uri, full=full, allow_mass_delete=allow_mass_delete, lease=lease, force=force,
                                    reconcile=reconcile)
            return self.finish(prepared, lease, on_progress)

    def finish(self, prepared: PreparedRefresh, lease: Lease,
               on_progress: Callable[[int, int], None] | None = None) -> RefreshReport:
        """Embed a prepared run's batches and commit it, under the refresh lease the caller holds."""
        with runs.failures_recorded(self.registry, prepared.run_id):
            for i, batch in enumerate(prepared.batches):
                lease.check()
                self.embed_batch(prepared.run_id, batch)
                if on_progress:
                    on_progress(i + 1, len(prepared.batches))
            return self._commit(prepared.run_id, lease)


def detect_changes(settings: Settings, registry: Registry | None = None, source_uri: str | None = None) -> dict[str, int]:
    """The cheap change detector: fingerprints only, no parsing; known-bad (quarantined) versions are ignored.

    Raises FirstRefreshPending before the first successful refresh, which indexes everything anyway.
    """
    registry = registry or Registry(settings.registry_url)
    require_first_refresh(registry, "the change detector")
    uri = source_uri or settings.source
    # The watcher: scans the change feed (stat only) and reads just what it names, when it can vouch for it.
    inventory = listing.take(settings, registry, Source.from_settings(settings, uri), uri, periodic=False)
    bad, indexed = known_bad(registry), inventory.indexed
    # A version already quarantined counts as "no news": the indexed (last good) version stands for it.
    seen = {u: indexed.get(u) if (u, d.fingerprint) in bad else d.fingerprint for u, d in inventory.listed.items()}
    plan = plan_refresh({u: f for u, f in seen.items() if f is not None}, indexed)
    never_good = sum(1 for f in seen.values() if f is None)  # quarantined, never indexed: not counted, as before
    plan.unchanged = inventory.n_listed - len(plan.added) - len(plan.changed) - never_good
    return plan.counts()


def _ts(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
