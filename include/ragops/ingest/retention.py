"""One retention policy for index versions, on every backend: keep what a reader can still be sent to, prune the rest.

A version of a collection is kept while any of these can reach it:
- the live version and blue/green candidates (`status` live or candidate);
- the releases of the current rollout (stable, candidate, and the stable before it: the rollback target), and
  every release made within the rollback window;
- the rollback window itself: versions made within RAGOPS_RETENTION_DAYS;
- the newest RAGOPS_RETENTION_MIN_VERSIONS versions, however old (a serving process may still read the one before
  the newest until it re-reads the rollout, and the backend's newest is never pruned).

The rows of the rest are marked `pruned` first (a release of them is then refused), the keep set is checked again for
a release or rollout made meanwhile, then the backend deletes the rest (`IndexCatalog.prune`); rows whose version it
kept get their status back. So the registry rows of what it deleted are `pruned`, and
routing (`resolve_index_version`), releases and rollbacks never send a reader to a version that no longer exists.
`check_versions` finds registry rows whose version is gone anyway (deleted by hand, a restored registry) and
`repair_versions` marks them, then applies the policy: `ragops doctor` reports and repairs through them.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from ragops.config import Settings
from ragops.errors import ClockSkew, StoreUnavailable
from ragops.index import open_catalog
from ragops.registry import Registry, registry_lock
from ragops.registry.lease import database_now, lease_settings
from ragops.registry.models import IndexVersion, Release, RolloutState

log = logging.getLogger(__name__)
PRUNED = "pruned"
SKEW = timedelta(minutes=10)  # the most this host's clock may differ from the registry's for a prune
SHOWN = 50


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass
class Pruned:
    collection: str
    kept: list[int]
    pruned: list[int]
    rows_marked: list[int]  # registry ids of the index versions now `pruned`

    def to_dict(self) -> dict:
        return asdict(self)


def reachable(session, settings: Settings, collection: str, now: datetime | None = None,
              among: Collection[int] | None = None) -> set[int]:
    """The store versions of `collection` that the policy keeps (see the module docstring). `among`: the registry
    ids of rows just marked pruned, checked again for a release or rollout that reaches them since."""
    now = now or datetime.now(timezone.utc)
    window = now - timedelta(days=settings.retention_days)
    matched = IndexVersion.status != PRUNED if among is None else IndexVersion.id.in_(list(among))
    rows = session.scalars(select(IndexVersion).where(IndexVersion.store == settings.store,
                                                      IndexVersion.collection == collection, matched)
                           .order_by(IndexVersion.id)).all()
    if among is not None and not rows:
        return set()
    state = session.get(RolloutState, 1)
    in_rollout = ({state.stable_release_id, state.candidate_release_id, state.previous_stable_release_id}
                  if state else set())
    pinned = set(session.scalars(select(Release.index_version_id).where(
        Release.index_version_id.is_not(None),
        or_(Release.id.in_({r for r in in_rollout if r is not None}), Release.created_at >= window))))
    if among is not None:
        return {r.store_version for r in rows if r.id in pinned}
    keep = {r.store_version for r in rows[-settings.retention_min_versions:]}
    keep |= {r.store_version for r in rows
             if r.status in ("live", "candidate") or r.id in pinned or _utc(r.created_at) >= window}
    return keep


def _restore(registry: Registry, statuses: dict[int, str]) -> None:
    """Give rows marked pruned ahead of a prune their status back (their version was kept after all)."""
    with registry.session() as s:
        for status in set(statuses.values()):
            s.execute(update(IndexVersion).where(IndexVersion.id.in_([i for i, v in statuses.items() if v == status]),
                                                 IndexVersion.status == PRUNED).values(status=status))


def _checked_now(session) -> datetime:
    """This host's time, refused when it is far from the registry's: a clock running ahead would put every release
    and version outside the rollback window."""
    here, registry_time = datetime.now(timezone.utc), database_now(session)
    if abs(here - registry_time) > SKEW:
        raise ClockSkew(f"this host's clock ({here.isoformat()}) is {here - registry_time} from the registry "
                        f"database's ({registry_time.isoformat()}): nothing is pruned until the clocks agree")
    return here


def enforce(settings: Settings, registry: Registry, collection: str, now: datetime | None = None) -> Pruned:
    """Prune `collection` on the configured backend by the policy and mark the registry rows of what went.

    The rows to go are marked `pruned` *before* the backend deletes anything, so a release created meanwhile is
    refused (releases/records.py); then the keep set is computed again, and a version that became reachable in
    between (a release or a rollout of it) is restored and kept. Rows whose version the backend kept after all (a
    failure, a version someone else tagged on LanceDB) get their status back."""
    with registry.session() as s:
        now = now or _checked_now(s)  # one instant for both: a release made since is within the window
        keep = reachable(s, settings, collection, now)
        doomed = {r.id: (r.status, r.store_version) for r in s.scalars(select(IndexVersion).where(
            IndexVersion.store == settings.store, IndexVersion.collection == collection,
            IndexVersion.status.notin_((PRUNED, "live", "candidate")),
            IndexVersion.store_version.notin_(keep)).with_for_update())}
        if doomed:
            s.execute(update(IndexVersion).where(IndexVersion.id.in_(doomed)).values(status=PRUNED))
    gone: list[int] = []
    try:
        with registry.session() as s:
            again = reachable(s, settings, collection, now, among=doomed)
        keep |= again
        gone = open_catalog(settings).prune(collection, keep)
    finally:
        _restore(registry, {i: status for i, (status, version) in doomed.items() if version not in gone})
    marked = sorted(i for i, (_, version) in doomed.items() if version in gone)
    if gone:
        log.info("retention pruned versions %s of %s (kept %s); registry rows %s marked pruned", gone, collection,
                 sorted(keep), marked)
    return Pruned(collection, sorted(keep), gone, marked)


def collections(settings: Settings, registry: Registry) -> list[str]:
    """The collections of the configured backend that the registry has versions of (live, retired or candidates)."""
    with registry.session() as s:
        return sorted(set(s.scalars(select(IndexVersion.collection).where(IndexVersion.store == settings.store,
                                                                           IndexVersion.status != PRUNED))))


def enforce_all(settings: Settings, registry: Registry, *, quiet: bool = False) -> dict[str, list[int]]:
    """`enforce` on every collection; what was pruned, by collection.

    `quiet` (after a refresh that succeeded): a collection that cannot be pruned is logged and retried at the next
    refresh, never fatal, and the others are still pruned.
    """
    pruned = {}
    for collection in collections(settings, registry):
        try:
            gone = enforce(settings, registry, collection).pruned
        except (StoreUnavailable, ClockSkew, SQLAlchemyError) as exc:  # the refresh's version is recorded whole already
            if not quiet:
                raise
            log.warning("could not prune old versions of %s (retried at the next refresh): %s", collection, exc)
            continue
        if gone:
            pruned[collection] = gone
    return pruned


def _mark(registry: Registry, settings: Settings, collection: str, versions) -> list[int]:
    """Mark the rows of `versions` pruned (never the live one: that is a problem for a person, not a status)."""
    if not versions:
        return []
    with registry.session() as s:
        ids = list(s.scalars(select(IndexVersion.id).where(
            IndexVersion.store == settings.store, IndexVersion.collection == collection,
            IndexVersion.store_version.in_(list(versions)), IndexVersion.status.notin_((PRUNED, "live")))))
        if ids:
            s.execute(update(IndexVersion).where(IndexVersion.id.in_(ids)).values(status=PRUNED))
        return ids


# -- ragops doctor: the registry against what the backend holds --------------------------------------------------------
@dataclass
class VersionFindings:
    """Registry rows that name an index version the backend no longer holds."""

    missing: list[dict] = field(default_factory=list)  # {"id", "collection", "store_version", "status"}
    live_missing: bool = False
    repaired: dict | None = None

    @property
    def ok(self) -> bool:
        return not self.missing

    def problems(self) -> list[str]:
        if not self.missing:
            return []
        named = ", ".join(f"{m['collection']} v{m['store_version']}" for m in self.missing[:5])
        found = [f"{len(self.missing)} registry index versions name versions the index no longer holds ({named})"]
        if self.live_missing:
            found.append("the live index version is gone from the index: run `ragops refresh --full`")
        return found

    def to_dict(self) -> dict:
        return {"missing": self.missing[:SHOWN], "count": len(self.missing), "live_missing": self.live_missing,
                "repaired": self.repaired}


def check_versions(settings: Settings, registry: Registry) -> VersionFindings:
    """Every registry index version (not yet pruned) of the configured backend whose store version is gone."""
    with registry.session() as s:
        rows = s.execute(select(IndexVersion.id, IndexVersion.collection, IndexVersion.store_version,
                                IndexVersion.status)
                         .where(IndexVersion.store == settings.store, IndexVersion.status != PRUNED)
                         .order_by(IndexVersion.id)).all()
    catalog = open_catalog(settings)
    held: dict[str, set[int]] = {}
    missing = []
    for row in rows:
        if row.collection not in held:
            held[row.collection] = set(catalog.versions(row.collection))
        if row.store_version not in held[row.collection]:
            missing.append({"id": row.id, "collection": row.collection, "store_version": row.store_version,
                            "status": row.status})
    return VersionFindings(missing, any(m["status"] == "live" for m in missing))


def repair_versions(settings: Settings, registry: Registry) -> VersionFindings:
    """Mark the rows of vanished versions pruned, apply the policy to every collection, and check again.

    Under the refresh lease, so no refresh writes (or records) a version meanwhile.
    """
    from ragops.ingest.refresh import LOCK

    with registry_lock(registry, LOCK, **lease_settings(settings)):
        return _repair_versions(settings, registry)


def _repair_versions(settings: Settings, registry: Registry) -> VersionFindings:
    before = check_versions(settings, registry)
    by_collection: dict[str, list[int]] = {}
    for m in before.missing:
        by_collection.setdefault(m["collection"], []).append(m["store_version"])
    marked = [i for c, versions in by_collection.items() for i in _mark(registry, settings, c, versions)]
    pruned = enforce_all(settings, registry)
    after = check_versions(settings, registry)
    after.repaired = {"rows_marked": marked, "pruned": pruned, "before": len(before.missing)}
    return after
