"""Request events and MCP access-log rows, written in batches off the request path; none lost, none erased.

`record()` bounds and validates a row (microseconds) and puts it on a queue; a background thread inserts batches.
A batch that fails because of one row is written again row by row, so a bad row never takes its neighbours down.
While the registry is unreachable, rows wait in memory (up to `max_pending`) and are written when it returns; at
shutdown, rows it still cannot take go to a spool file that the next writer replays. A batch whose connection broke
may still have committed (the commit reached the database, its answer did not), so a batch written again is first
checked against what is stored (same request id, same instant): an event is never stored twice. An event that truly cannot be
stored (invalid, rejected by the database, or over the buffer) is counted through `on_drop` and logged.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from sqlalchemy import insert, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError

from ragops.audit import chain
from ragops.errors import StoreUnavailable
from ragops.notify.outbox import Outbox
from ragops.registry import Registry
from ragops.registry.bounds import InvalidRecord, bounded
from ragops.registry.models import McpAccessLog, RequestEvent
from ragops.releases import hash_user

log = logging.getLogger(__name__)
TABLES = {"request": RequestEvent, "mcp": McpAccessLog}
Drop = Callable[[str, int, str], None]


def _row_fault(exc: Exception) -> bool:
    """True when the database refused this row's content (its neighbours are fine); else the store is at fault."""
    if isinstance(exc, (DataError, IntegrityError)):
        return True
    return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)  # a value the driver cannot send


def request_event(request_id: str, endpoint: str, user: str, status: int, latency_ms: float, *, variant: str = "stable",
                  release_id: int | None = None, fallback: str | None = None, error: str | None = None,
                  chunk_ids: list[str] | None = None, verified: bool = False, synthetic: bool = False,
                  question: str | None = None, query: str | None = None, similarity: float | None = None,
                  coverage: float | None = None) -> dict:
    """The request_events row for one served request (the serving app and `ragops ask` both write it). `verified`:
    the caller proved who it is (an API key); `synthetic`: the platform's probe credential sent it. The caller
    decides both from its credentials, never from `user`, which a client may choose. `question` is stored as
    given (the caller redacts it first); `query` only when retrieval searched for something else (a condensed
    follow-up); `similarity` and `coverage` are the retrieval evidence the answer was weighed on."""
    return {"request_id": request_id, "endpoint": endpoint, "user_hash": hash_user(user), "variant": variant,
            "release_id": release_id, "latency_ms": latency_ms, "status": status, "fallback": fallback, "error": error,
            "chunk_ids": chunk_ids or [], "verified": verified, "synthetic": synthetic, "question": question,
            "query": query if query != question else None, "similarity": similarity, "coverage": coverage}


def asked(redact: Callable[[str], str], question: str, result, query: str | None = None) -> dict:
    """What a request event keeps of the question (redacted before storage) and of the evidence the answer was
    weighed on (`result.evidence`); the keyword arguments of `request_event` (issue 23)."""
    found = result.evidence
    kept = {"query": redact(query)} if query is not None else {}
    return kept | {"question": redact(question), "similarity": getattr(found, "similarity", None),
                   "coverage": getattr(found, "coverage", None)}


def _instant(ts: datetime) -> datetime:
    """A timestamp as naive UTC, however the database returned it (SQLite drops the zone)."""
    return ts.astimezone(timezone.utc).replace(tzinfo=None) if ts.tzinfo else ts


_WAKE = ("", {})  # put by close(): the writer thread, waiting up to interval_s for a row, stops waiting at once


class EventWriter:
    def __init__(self, registry: Registry | Callable[[], Registry], *, batch_size: int = 200, interval_s: float = 0.25,
                 max_pending: int = 100_000, spool: Path | None = None, on_drop: Drop | None = None,
                 on_written: Drop | None = None, audit_key: bytes | None = None):
        self._registry = registry if callable(registry) and not isinstance(registry, Registry) else (lambda: registry)
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.max_pending = max_pending
        self.spool = Outbox(spool) if spool else None
        self.on_drop = on_drop
        self.on_written = on_written
        self.audit_key = audit_key  # MACs each access-log row (ragops.audit.anchor.signing_key)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._pending = 0  # recorded and neither written nor given up on
        self._done = threading.Condition()
        self._leftover: list[tuple[str, dict]] = []
        self.written = 0
        self.dropped = 0
        if self.spool is not None:
            self._replay_spool()
        self._thread = threading.Thread(target=self._run, name="ragops-events", daemon=True)
        self._thread.start()

    @property
    def registry(self) -> Registry:
        return self._registry()

    # -- the request path ------------------------------------------------------------------------------
    def record(self, kind: str, **row) -> None:
        row.setdefault("ts", datetime.now(timezone.utc))
        try:
            row = bounded(TABLES[kind], row)
        except (InvalidRecord, KeyError) as exc:
            return self._drop(kind, 1, "invalid", str(exc))
        with self._done:
            if self._pending >= self.max_pending:
                full = True
            else:
                full, self._pending = False, self._pending + 1
        if full:
            return self._drop(kind, 1, "buffer_full", f"{self.max_pending} events wait for the registry already")
        self._queue.put((kind, row))

    def _drop(self, kind: str, n: int, reason: str, detail: str) -> None:
        self.dropped += n
        log.error("%d %s event(s) could not be stored (%s): %s", n, kind, reason, detail)
        if self.on_drop is not None:
            self.on_drop(kind, n, reason)

    # -- the writer thread -----------------------------------------------------------------------------
    def _take(self, block: bool, limit: int) -> list[tuple[str, dict]]:
        items: list[tuple[str, dict]] = []
        try:
            items.append(self._queue.get(timeout=self.interval_s) if block else self._queue.get_nowait())
            while len(items) < limit:
                items.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        return [item for item in items if item is not _WAKE]

    def _run(self) -> None:
        held: list[tuple[str, dict]] = []  # oldest first; rows the registry could not take yet
        delay = 0.0
        while True:
            again = bool(held)  # rows kept from a write whose outcome is unknown
            held += self._take(block=not held and not self._stop.is_set(), limit=self.batch_size - len(held))
            if not held:
                if self._stop.is_set():
                    return
                continue
            held = self._write(held, again)
            if not held:
                delay = 0.0
                continue
            if self._stop.is_set():  # shutting down with the registry away: close() spools what is left
                self._leftover = held
                return
            delay = min(5.0, delay * 2 or 0.2)
            self._wake.wait(delay)
            self._wake.clear()

    def _write(self, items: list[tuple[str, dict]], again: bool = False) -> list[tuple[str, dict]]:
        """Write one batch; returns the rows to keep for later because the registry is unavailable. `again`: some
        rows were attempted before, and that attempt may have committed."""
        kept: list[tuple[str, dict]] = []
        for kind in TABLES:
            rows = [row for k, row in items if k == kind]
            if not rows:
                continue
            try:
                if again:
                    stored = self._already_stored(kind, rows)
                    if stored:
                        log.info("%d %s events were stored by an attempt whose answer was lost", len(stored), kind)
                        self._settled(kind, len(stored))
                        rows = [row for row in rows if id(row) not in stored]
                        if not rows:
                            continue
                self._insert(kind, rows)
            except (StoreUnavailable, SQLAlchemyError) as exc:
                if not _row_fault(exc):
                    log.warning("the registry cannot take %d %s events now, keeping them: %s", len(rows), kind, exc)
                    kept += [(kind, row) for row in rows]
                    continue
                kept += self._row_by_row(kind, rows)
                continue
            self._settled(kind, len(rows))
        return kept

    def _row_by_row(self, kind: str, rows: list[dict]) -> list[tuple[str, dict]]:
        for i, row in enumerate(rows):
            try:
                self._insert(kind, [row])
            except (StoreUnavailable, SQLAlchemyError) as exc:
                if not _row_fault(exc):
                    return [(kind, r) for r in rows[i:]]
                self._settled(kind, 0, dropped=1)
                self._drop(kind, 1, "rejected", f"{type(exc).__name__}: {str(exc)[:300]}")
                continue
            self._settled(kind, 1)
        return []

    def _insert(self, kind: str, rows: list[dict]) -> None:
        with self.registry.session() as s:
            if kind == "mcp":
                chain.append(s, rows, self.audit_key)
            else:
                s.execute(insert(TABLES[kind]), rows)

    def _already_stored(self, kind: str, rows: list[dict]) -> set[int]:
        """The ids (`id(row)`) of rows already in the table: same request id at the same instant. Looked up by the
        batch's time range, which the `ts` index serves, so access-log rows without a request id are found too."""
        table = TABLES[kind]
        instants = [_instant(row["ts"]) for row in rows]
        with self.registry.session() as s:
            found = set(s.execute(select(table.request_id, table.ts)
                                  .where(table.ts >= min(r["ts"] for r in rows), table.ts <= max(r["ts"] for r in rows))))
        stored = {(request_id, _instant(ts)) for request_id, ts in found}
        return {id(row) for row, at in zip(rows, instants) if (row.get("request_id", ""), at) in stored}

    def _settled(self, kind: str, written: int, dropped: int = 0) -> None:
        self.written += written
        if written and self.on_written is not None:
            self.on_written(kind, written, "written")
        with self._done:
            self._pending -= written + dropped
            self._done.notify_all()

    # -- flushing and shutdown -------------------------------------------------------------------------
    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every event recorded so far is written or given up on; False if some still wait."""
        deadline = time.monotonic() + timeout_s
        self._wake.set()
        with self._done:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._done.wait(min(left, 0.05))
        return True

    @property
    def pending(self) -> int:
        return self._pending

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued; what the registry cannot take goes to the spool (or is counted as dropped)."""
        self.flush(timeout_s)
        self._stop.set()
        self._wake.set()
        self._queue.put(_WAKE)
        self._thread.join(timeout=timeout_s)
        left = self._leftover + self._take(block=False, limit=self.max_pending + 1)
        self._leftover = []
        if not left:
            return
        with self._done:
            self._pending -= len(left)
            self._done.notify_all()
        if self.spool is None:
            for kind in TABLES:
                n = sum(1 for k, _ in left if k == kind)
                if n:
                    self._drop(kind, n, "shutdown", "the registry was unavailable at shutdown and there is no spool")
            return
        for kind, row in left:
            self.spool.append({"kind": kind, "row": row | {"ts": row["ts"].isoformat()}})
        log.warning("the registry is unavailable: %d events spooled to %s for the next start", len(left), self.spool.path)

    def _replay_spool(self) -> None:
        def take(record: dict) -> bool:
            row = dict(record["row"], ts=datetime.fromisoformat(record["row"]["ts"]))
            self.record(record["kind"], **row)
            return True

        sent, _ = self.spool.drain(take)
        if sent:
            log.info("replaying %d events spooled while the registry was unavailable", sent)
