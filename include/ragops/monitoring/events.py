"""Request events and MCP access-log rows, written in batches off the request path.

`record()` only puts a row on an in-memory queue (microseconds); a background thread inserts batches. `close()`
drains the queue, so a clean shutdown loses nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import datetime, timezone

from sqlalchemy import insert
from sqlalchemy.exc import SQLAlchemyError

from ragops.registry import Registry
from ragops.registry.models import McpAccessLog, RequestEvent
from ragops.releases import hash_user

log = logging.getLogger(__name__)
TABLES = {"request": RequestEvent, "mcp": McpAccessLog}
PROBE_PREFIX = "ragops-probe:"  # user ids of the canary gate's probe traffic (rollout/probe.py)


def request_event(request_id: str, endpoint: str, user: str, status: int, latency_ms: float, *, variant: str = "stable",
                  release_id: int | None = None, fallback: str | None = None, error: str | None = None,
                  chunk_ids: list[str] | None = None) -> dict:
    """The request_events row for one served request (the serving app and `ragops ask` both write it)."""
    return {"request_id": request_id, "endpoint": endpoint, "user_hash": hash_user(user), "variant": variant,
            "release_id": release_id, "latency_ms": latency_ms, "status": status, "fallback": fallback, "error": error,
            "chunk_ids": chunk_ids or [], "synthetic": user.startswith(PROBE_PREFIX)}


class EventWriter:
    def __init__(self, registry: Registry, *, batch_size: int = 200, interval_s: float = 0.25):
        self.registry = registry
        self.batch_size = batch_size
        self.interval_s = interval_s
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._pending = 0  # recorded and not yet written (or given up on)
        self._done = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="ragops-events", daemon=True)
        self._thread.start()
        self.written = 0

    def record(self, kind: str, **row) -> None:
        row.setdefault("ts", datetime.now(timezone.utc))
        with self._done:
            self._pending += 1
        self._queue.put((kind, row))

    def _take(self, block: bool) -> list[tuple[str, dict]]:
        items = []
        try:
            items.append(self._queue.get(timeout=self.interval_s) if block else self._queue.get_nowait())
            while len(items) < self.batch_size:
                items.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        return items

    def _write(self, items: list[tuple[str, dict]]) -> None:
        try:
            self._insert(items)
        finally:
            with self._done:
                self._pending -= len(items)
                self._done.notify_all()

    def _insert(self, items: list[tuple[str, dict]]) -> None:
        by_kind: dict[str, list[dict]] = {}
        for kind, row in items:
            by_kind.setdefault(kind, []).append(row)
        for attempt in range(3):
            try:
                with self.registry.session() as s:
                    for kind, rows in by_kind.items():
                        s.execute(insert(TABLES[kind]), rows)
                self.written += len(items)
                return
            except SQLAlchemyError as exc:
                log.warning("writing %d events failed (attempt %d): %s", len(items), attempt + 1, exc)
                self._stop.wait(0.2 * (attempt + 1))
        log.error("dropped %d events after 3 attempts; the registry is unavailable", len(items))

    def _run(self) -> None:
        while not self._stop.is_set():
            items = self._take(block=True)
            if items:
                self._write(items)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Return once every event recorded so far is written, including batches the thread is writing now."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            items = self._take(block=False)
            if items:
                self._write(items)
                continue
            with self._done:
                if self._pending <= 0:
                    return
                self._done.wait(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()
