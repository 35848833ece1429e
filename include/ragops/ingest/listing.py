"""What a refresh plans from: the documents its source's change feed names, or the whole source, listed and read.

From the feed (ragops.sources.feed) a refresh reads only the documents logged since the cursor its last successful
run stored (`refresh_runs.plan["listing"]["cursor"]`), and looks up only their fingerprints: planning grows with the
changes. It lists the whole source instead, and records why in `plan["listing"]["reason"]`, when the source has no
feed, when the feed cannot vouch for every change since that cursor (none, corrupt, of a journal started anew, or
left by a run the live index version did not come from), when the index and the registry disagree, on
a full rebuild or forced documents, and when the last full listing is older than RAGOPS_SOURCE_FULL_LISTING_DAYS (the
periodic reconciliation, which also finds what the index and the registry disagree on). A full listing stores the
feed's cursor taken before it read anything, so a change made while it ran is seen again by the next run.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable

from sqlalchemy import func, or_, select

from ragops.config import Settings
from ragops.ingest.planner import indexed_fingerprints
from ragops.registry import Registry
from ragops.registry.db import live_index_version
from ragops.registry.models import Chunk, Document, RefreshRun
from ragops.sources import Source, SourceDocument
from ragops.sources.feed import FeedGap

log = logging.getLogger(__name__)
IN_BATCH = 500  # uris per IN (...) lookup


@dataclass
class Inventory:
    mode: str  # "feed" or "full"
    listed: dict[str, SourceDocument]  # the documents read: every one (full), or those the feed named
    indexed: dict[str, str]  # the registry's fingerprints: every one (full), or of the uris the feed named
    n_listed: int  # documents the source holds
    record: dict = field(default_factory=dict)  # stored as the run's plan["listing"]


def previous_listing(registry: Registry, source_uri: str) -> dict:
    """The listing record of the newest successful refresh of `source_uri` that the live index version came from
    (the run that wrote it, or a later one that found nothing to change): {} if there is none. A cursor left by a
    refresh of another collection (before a switch, a blue/green build) never counts: the live one never saw it."""
    with registry.session() as s:
        live = live_index_version(s)
        if live is None:
            return {}
        plan = s.scalar(select(RefreshRun.plan).where(
            RefreshRun.source == source_uri, RefreshRun.status == "succeeded",
            or_(RefreshRun.id == live.refresh_run_id, RefreshRun.base_index_version == live.id))
            .order_by(RefreshRun.id.desc()).limit(1))
    listing = (plan or {}).get("listing") if isinstance(plan, dict) else None
    return listing if isinstance(listing, dict) else {}


def _batches(items: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(items), IN_BATCH):
        yield items[i:i + IN_BATCH]


def fingerprints_of(registry: Registry, uris: Iterable[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    with registry.session() as s:
        for part in _batches(sorted(set(uris))):
            found.update(s.execute(select(Document.uri, Document.fingerprint).where(Document.uri.in_(part))).all())
    return found


def registry_counts(registry: Registry, uris: Iterable[str]) -> tuple[Counter, int, int]:
    """Chunks per document of `uris`, and the documents and chunks the registry holds, from the registry alone."""
    chunks: Counter = Counter()
    with registry.session() as s:
        for part in _batches(sorted(set(uris))):
            chunks.update(dict(s.execute(select(Chunk.doc_uri, func.count()).where(Chunk.doc_uri.in_(part))
                                         .group_by(Chunk.doc_uri)).all()))
        n_docs = s.scalar(select(func.count()).select_from(Document)) or 0
        n_chunks = s.scalar(select(func.count()).select_from(Chunk)) or 0
    return chunks, n_docs, n_chunks


def _age_days(moment: str | None, now: datetime) -> float | None:
    try:
        then = datetime.fromisoformat(moment)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return (now - (then if then.tzinfo else then.replace(tzinfo=timezone.utc))).total_seconds() / 86400


def take(settings: Settings, registry: Registry, source: Source, source_uri: str, *, full: bool = False,
         forced: bool = False, periodic: bool = True, full_because: str | None = None,
         now: datetime | None = None) -> Inventory:
    """The inventory a plan is made from: from the feed when it can vouch for every change, else in full.

    `periodic` False (the change detector) skips the RAGOPS_SOURCE_FULL_LISTING_DAYS rule: only a refresh reconciles."""
    now = now or datetime.now(timezone.utc)
    feed = source.feed(settings.home) if settings.source_feed else None
    last = previous_listing(registry, source_uri)
    reason = None if feed is not None else (
        "the source keeps no change feed" if settings.source_feed else "RAGOPS_SOURCE_FEED is off")
    if feed is not None:
        try:
            feed.scan()
        except OSError as exc:
            reason, feed = f"the change journal could not be written: {exc}", None
    if reason is None:
        age = _age_days(last.get("last_full_at"), now)
        if full_because:
            reason = full_because
        elif full:
            reason = "a full rebuild was asked for"
        elif forced:
            reason = "documents were forced"
        elif age is None:
            reason = "no full listing of this source is recorded"
        elif periodic and age > settings.source_full_listing_days:
            reason = (f"the last full listing was {age:.1f} days ago, more than RAGOPS_SOURCE_FULL_LISTING_DAYS "
                      f"({settings.source_full_listing_days:g}): the periodic reconciliation")
        else:
            try:
                return _from_feed(registry, source, feed.changes(last.get("cursor")), last)
            except FeedGap as gap:
                reason = f"the change feed cannot vouch for every change: {gap}"
                log.warning("listing the whole source %s: %s", source_uri, reason)
    cursor = None
    if feed is not None:
        try:
            cursor = feed.head()  # before the listing: what changes while it runs is read again next time
        except FeedGap as gap:
            log.warning("the change feed of %s has no usable head (%s); the next refresh lists in full too",
                        source_uri, gap)
    listed = {d.uri: d for d in source.documents()}
    record = {"mode": "full", "reason": reason, "cursor": cursor, "last_full_at": now.isoformat()}
    return Inventory("full", listed, indexed_fingerprints(registry), len(listed), record)


def _from_feed(registry: Registry, source: Source, changes, last: dict) -> Inventory:
    listed = {}
    for uri, path in sorted(changes.put.items()):
        doc = source.read(path)
        listed[doc.uri] = doc
    indexed = fingerprints_of(registry, [*listed, *changes.deleted])
    with registry.session() as s:
        n_docs = s.scalar(select(func.count()).select_from(Document)) or 0
    new = sum(1 for u in listed if u not in indexed)
    gone = sum(1 for u in changes.deleted if u in indexed)
    record = {"mode": "feed", "since": last.get("cursor"), "cursor": changes.cursor, "entries": changes.entries,
              "named": len(changes.put) + len(changes.deleted), "scanned_at": changes.scanned_at,
              "last_full_at": last.get("last_full_at")}
    return Inventory("feed", listed, indexed, n_docs + new - gone, record)
