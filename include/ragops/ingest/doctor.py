"""`ragops doctor`: the live index checked against the registry, and repaired on request.

Found: an index collection whose files cannot be read (truncated or missing data files, a manifest naming files that
are gone), documents in the index that the registry does not know (ghosts: a lost or restored registry, a crash between
the index commit and the registry commit), documents the registry records but the index lost, documents whose chunk
ids differ between the two, refresh runs left planned by a dead process, an expired refresh lease, and registry index
versions whose version the index no longer holds (`ragops.ingest.retention.check_versions`; repaired by marking them
pruned and applying the retention policy, under the lease).
Repaired by one refresh under the lease, which sweeps abandoned runs, deletes ghosts gone from the source (under the
shrinkage guard), and indexes lost and drifted documents again from the source; an unreadable collection is rebuilt
from the sources into a new one instead (`ingest/rebuild.py`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from ragops.config import Settings
from ragops.errors import RagopsError, StoreUnavailable
from ragops.index import open_catalog, open_store
from ragops.ingest.integrity import read_error
from ragops.ingest.retention import check_versions, repair_versions
from ragops.ingest.runs import planned_runs
from ragops.registry import Registry
from ragops.registry.db import live_index_version
from ragops.registry.models import Chunk, Document, Lock

SHOWN = 50  # document lists in the report are cut here; the counts are always whole


class IndexInconsistent(RagopsError):
    code = "index_inconsistent"
    exit_code = 7


@dataclass
class DoctorReport:
    ok: bool
    collection: str
    index_version: int | None
    documents: dict[str, int]
    ghosts: list[str]
    lost: list[str]
    drifted: list[str]
    runs: list[dict]
    lock: dict | None
    counts: dict[str, int] = field(default_factory=dict)
    repaired: dict | None = None
    unreadable: dict | None = None  # {collection, error} when the live collection's files cannot be read
    # registry rows against the versions the backend holds (ragops.ingest.retention.check_versions)
    versions: dict = field(default_factory=dict)
    version_problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("ghosts", "lost", "drifted"):
            out[key] = out[key][:SHOWN]
        return out

    def problems(self) -> list[str]:
        found = [f"{self.counts['ghosts']} documents in the index are unknown to the registry",
                 f"{self.counts['lost']} documents in the registry have no chunks in the index",
                 f"{self.counts['drifted']} documents have other chunks in the index than in the registry",
                 f"{self.counts['abandoned_runs']} refresh runs were abandoned ({self.counts['staged_chunks']} staged chunks)"]
        found = [text for text, key in zip(found, ("ghosts", "lost", "drifted", "abandoned_runs")) if self.counts[key]]
        if self.unreadable:
            found.insert(0, f"the index collection {self.unreadable['collection']!r} cannot be read, its files are "
                            f"damaged or missing ({self.unreadable['error']}); `ragops doctor --repair` rebuilds it "
                            "from the sources into a new collection")
        if self.lock and self.lock["expired"]:
            found.append(f"the refresh lock of {self.lock['owner']} expired at {self.lock['expires_at']}")
        return found + self.version_problems

    def human(self) -> str:
        lines = [f"collection {self.collection}, index version {self.index_version}: "
                 f"{self.documents['registry']} documents in the registry, {self.documents['index']} in the index"]
        lines += [f"  problem: {p}" for p in self.problems()] or ["  consistent"]
        rebuilt = (self.repaired or {}).get("rebuild")
        if rebuilt:
            lines.append(f"  rebuilt {rebuilt['documents']} documents from {rebuilt['source']} into collection "
                         f"{rebuilt['collection']} (index version {rebuilt['index_version']}) by refresh run "
                         f"{rebuilt['run_id']}; the damaged collection {rebuilt['damaged']['collection']!r} was "
                         f"moved to {rebuilt['set_aside']}")
        elif self.repaired:
            lines.append(f"  repaired by refresh run {self.repaired['refresh']['run_id']}")
        return "\n".join(lines)


def check(settings: Settings, registry: Registry | None = None) -> DoctorReport:
    registry = registry or Registry(settings.registry_url)
    with registry.session() as s:
        live = live_index_version(s)
        registered: dict[str, set[str]] = {uri: set() for uri in s.scalars(select(Document.uri))}
        for uri, chunk_id in s.execute(select(Chunk.doc_uri, Chunk.chunk_id)):
            registered.setdefault(uri, set()).add(chunk_id)
        lock = s.get(Lock, "refresh")
        lock_info = None
        if lock is not None:
            expires = lock.expires_at if lock.expires_at.tzinfo else lock.expires_at.replace(tzinfo=timezone.utc)
            lock_info = {"owner": lock.owner, "expires_at": expires.isoformat(),
                         "expired": expires < datetime.now(timezone.utc)}
    collection = live.collection if live else "chunks"
    try:
        open_catalog(settings).collections()  # the backend itself is away: an outage, not damage; nothing to rebuild
    except (OSError, RuntimeError) as exc:
        raise StoreUnavailable(f"the index backend cannot be reached: {exc}") from exc
    rows, damage = [], None
    try:
        store = open_store(settings, collection)
        damage = read_error(store)
        if damage is None:
            rows = store.rows(["chunk_id", "doc_uri"])
    except StoreUnavailable as exc:  # a manifest too damaged to open
        damage = str(exc)
    indexed: dict[str, set[str]] = {}
    for row in rows:
        indexed.setdefault(row["doc_uri"], set()).add(row["chunk_id"])
    ghosts = sorted(set(indexed) - set(registered))
    lost = sorted(set(registered) - set(indexed)) if damage is None else []  # unknown, not lost, while unreadable
    drifted = sorted(u for u in set(indexed) & set(registered) if indexed[u] != registered[u])
    holder = lock.owner if lock_info and not lock_info["expired"] else None
    runs = planned_runs(registry, timedelta(seconds=settings.refresh_stale_after_s), holder)
    abandoned = [r for r in runs if r["abandoned"]]
    counts = {"ghosts": len(ghosts), "lost": len(lost), "drifted": len(drifted), "abandoned_runs": len(abandoned),
              "staged_chunks": sum(r["staged_chunks"] for r in abandoned), "unreadable": int(damage is not None)}
    report = DoctorReport(False, collection, live.id if live else None,
                          {"registry": len(registered), "index": len(indexed)}, ghosts, lost, drifted, runs, lock_info,
                          counts, unreadable={"collection": collection, "error": damage[:2000]} if damage else None)
    if damage is None:  # an unreadable collection cannot list its versions; the repair marks them afterwards
        _add_version_findings(report, check_versions(settings, registry))
    report.ok = not report.problems()
    return report


def _add_version_findings(report: DoctorReport, findings) -> None:
    report.versions, report.version_problems = findings.to_dict(), findings.problems()


def repair(settings: Settings, *, allow_mass_delete: bool = False, registry: Registry | None = None,
           embedder=None) -> DoctorReport:
    """Check, fix through one refresh (which holds the lease), and check again."""
    from ragops.ingest.refresh import Refresher

    registry = registry or Registry(settings.registry_url)
    before = check(settings, registry)
    if before.unreadable:
        from ragops.ingest.rebuild import rebuild_index

        rebuilt = rebuild_index(settings, registry, embedder=embedder, allow_missing=allow_mass_delete)
        versions = repair_versions(settings, registry)  # the set-aside collection's rows: their versions are gone
        after = check(settings, registry)
        after.repaired = {"before": before.counts, "rebuild": rebuilt, "versions": versions.repaired}
        return after
    refresh = Refresher(settings, registry=registry, embedder=embedder).run(
        allow_mass_delete=allow_mass_delete, force=before.drifted)
    versions = repair_versions(settings, registry)
    after = check(settings, registry)
    after.repaired = {"before": before.counts, "refresh": {k: v for k, v in refresh.to_dict().items() if k != "changed"}}
    after.repaired["versions"] = versions.repaired
    return after
