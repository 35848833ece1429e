"""Refresh runs in the registry: opened, kept alive, failed on any error, and swept when abandoned.

A run never stays `planned` after its process is gone. A failure of any kind is written on the run (`failed`, or
`blocked` for a guard) and its staged chunks (the corpus text) are removed. A run whose process was killed is found
by the next holder of the refresh lease: a run bound to a lease owner that no longer holds the lease, or a stepwise
(DAG) run idle for longer than `RAGOPS_REFRESH_STALE_AFTER_S`, is marked failed and its staged rows removed.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Iterator

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from ragops.errors import RagopsError, StoreUnavailable
from ragops.registry.models import RefreshRun, StagedChunk

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def touch(registry, run_id: int) -> None:
    """A stepwise run shows it is alive (each embedding batch of the DAG calls this)."""
    with registry.session() as s:
        s.execute(update(RefreshRun).where(RefreshRun.id == run_id, RefreshRun.status == "planned")
                  .values(heartbeat_at=_now()))


def claim(registry, run_id: int, lease_owner: str) -> None:
    """Bind a planned run to the lease holder that will commit it: if that holder dies, the run is abandoned."""
    with registry.session() as s:
        s.execute(update(RefreshRun).where(RefreshRun.id == run_id, RefreshRun.status == "planned")
                  .values(lease_owner=lease_owner, heartbeat_at=_now()))


def record_failure(registry, run_id: int, exc: BaseException) -> None:
    """Write the failure on a still-planned run and drop its staged rows; logged, never raised, if the registry is down."""
    status = "blocked" if getattr(exc, "code", None) == "refresh_blocked" else "failed"
    error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, RagopsError) else str(exc)
    try:
        with registry.session() as s:
            s.execute(update(RefreshRun).where(RefreshRun.id == run_id, RefreshRun.status == "planned")
                      .values(status=status, error=error[:4000], finished_at=_now()))
            s.execute(delete(StagedChunk).where(StagedChunk.run_id == run_id))
    except SQLAlchemyError as db_exc:
        log.error("refresh run %s failed (%s) and the failure could not be recorded: %s", run_id, error, db_exc)


@contextmanager
def failures_recorded(registry, run_id: int) -> Iterator[None]:
    """Any exception inside marks the run failed first; registry errors become StoreUnavailable."""
    try:
        yield
    except SQLAlchemyError as exc:
        record_failure(registry, run_id, exc)
        raise StoreUnavailable(f"the registry failed during refresh run {run_id}: {exc}") from exc
    except BaseException as exc:  # recorded, then re-raised unchanged: a killed or broken run is never left planned
        record_failure(registry, run_id, exc)
        raise


def sweep_abandoned(registry, lease_owner: str, stale_after: timedelta) -> list[int]:
    """Fail the planned runs nobody runs any more. Only a holder of the refresh lease may call this."""
    cutoff = _now() - stale_after
    with registry.session() as s:
        planned = s.execute(select(RefreshRun.id, RefreshRun.lease_owner, RefreshRun.heartbeat_at, RefreshRun.started_at)
                            .where(RefreshRun.status == "planned")).all()
        gone = []
        for run_id, owner, beat, started in planned:
            last = beat or started
            last = last if last.tzinfo else last.replace(tzinfo=timezone.utc)
            if owner and owner != lease_owner:
                gone.append((run_id, f"abandoned: its process ({owner}) stopped without finishing"))
            elif not owner and last < cutoff:
                gone.append((run_id, f"abandoned: no progress since {last:%Y-%m-%d %H:%M}Z"))
        for run_id, reason in gone:
            s.execute(update(RefreshRun).where(RefreshRun.id == run_id, RefreshRun.status == "planned")
                      .values(status="failed", error=reason, finished_at=_now()))
            s.execute(delete(StagedChunk).where(StagedChunk.run_id == run_id))
    for run_id, reason in gone:
        log.warning("refresh run %s %s; marked failed and its staged chunks removed", run_id, reason)
    return [run_id for run_id, _ in gone]


def planned_runs(registry, stale_after: timedelta, lease_holder: str | None) -> list[dict]:
    """Planned runs and their staged rows, each judged abandoned or not against the current lease holder."""
    cutoff = _now() - stale_after
    with registry.session() as s:
        rows = s.execute(select(RefreshRun.id, RefreshRun.lease_owner, RefreshRun.heartbeat_at, RefreshRun.started_at,
                                func.count(StagedChunk.chunk_id))
                         .outerjoin(StagedChunk, StagedChunk.run_id == RefreshRun.id)
                         .where(RefreshRun.status == "planned").group_by(RefreshRun.id)).all()
    out = []
    for run_id, owner, beat, started, staged in rows:
        last = beat or started
        last = last if last.tzinfo else last.replace(tzinfo=timezone.utc)
        abandoned = owner != lease_holder if owner else last < cutoff
        out.append({"run_id": run_id, "lease_owner": owner, "last_progress": last.isoformat(), "staged_chunks": staged,
                    "abandoned": abandoned})
    return out
