"""Leases: named locks in the registry that survive hosts.

A holder takes the `locks` row for a name and renews it from a heartbeat thread while it works (every
`RAGOPS_LOCK_HEARTBEAT_S`, for `RAGOPS_LOCK_TTL_S` each time). Anyone may take over a lease that was not renewed
in time: its holder died, hung or lost the database, on this host or any other. A dead holder on this host is
detected at once by its pid. Times come from the registry database's clock, so hosts never compare their own
clocks. A holder that finds its lease gone (taken over after a stall) stops before its next write: `check()`.

    with registry_lock(registry, "refresh", ttl=timedelta(minutes=5), heartbeat=timedelta(minutes=1)) as lease:
        ...                 # renewed in the background
        lease.check()       # raises RefreshConflict if the lease was lost meanwhile

The refresh uses it (ragops.ingest.refresh), and so does any other job that must run once at a time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from ragops.errors import RefreshConflict
from ragops.registry.models import Lock

log = logging.getLogger(__name__)

DEFAULT_TTL = timedelta(minutes=5)
Clock = Callable[[Session], datetime]


def database_now(session: Session) -> datetime:
    """The registry database's time (UTC); SQLite lives on this host, so its clock is this host's."""
    if session.get_bind().dialect.name == "sqlite":
        return datetime.now(timezone.utc)
    return _utc(session.scalar(select(func.current_timestamp())))


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _holder_is_dead(owner: str) -> bool:
    """True only for a holder on this host whose process is gone; other hosts are judged by expiry alone."""
    host, pid = (owner.split(":") + ["", ""])[:2]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Lease:
    def __init__(self, registry, name: str, ttl: timedelta = DEFAULT_TTL, heartbeat: timedelta | None = None,
                 clock: Clock = database_now):
        self.registry = registry
        self.name = name
        self.ttl = ttl
        self.heartbeat = heartbeat if heartbeat is not None else ttl / 5
        self.clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.took_over_from: str | None = None
        self.lost: str | None = None
        self._renewed = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> "Lease":
        """Take the lease, or take it over when it expired or its holder here died; else RefreshConflict."""
        try:
            with self.registry.session() as s:
                now = self.clock(s)
                s.execute(insert(Lock).values(name=self.name, owner=self.owner, acquired_at=now,
                                              expires_at=now + self.ttl, renewed_at=now))
        except IntegrityError:
            self._take_over()
        self._renewed = time.monotonic()
        return self

    def _take_over(self) -> None:
        with self.registry.session() as s:
            now = self.clock(s)
            held = s.execute(select(Lock.owner, Lock.acquired_at, Lock.expires_at).where(Lock.name == self.name)).first()
            if held is None:
                raise RefreshConflict(f"lock {self.name!r} changed hands while acquiring; try again")
            expires = _utc(held.expires_at)
            if expires >= now and not _holder_is_dead(held.owner):
                raise RefreshConflict(
                    f"another run holds the {self.name!r} lock ({held.owner}, since "
                    f"{_utc(held.acquired_at):%Y-%m-%d %H:%M:%S}Z, renewed until {expires:%H:%M:%S}Z; "
                    "it is taken over if its holder stops renewing it)")
            taken = s.execute(  # compare-and-set: of two runs taking over at once, one wins
                update(Lock)
                .where(Lock.name == self.name, Lock.owner == held.owner, Lock.expires_at == held.expires_at)
                .values(owner=self.owner, acquired_at=now, expires_at=now + self.ttl, renewed_at=now)
            ).rowcount
            if taken != 1:
                raise RefreshConflict(f"lock {self.name!r} was taken by another run; try again")
        self.took_over_from = held.owner
        log.warning("took over the %r lock from %s (expired %s)", self.name, held.owner, expires.isoformat())

    def renew(self) -> bool:
        """Extend the lease by its ttl; False (and `lost` set) when it is no longer ours."""
        with self.registry.session() as s:
            now = self.clock(s)
            kept = s.execute(update(Lock).where(Lock.name == self.name, Lock.owner == self.owner)
                             .values(expires_at=now + self.ttl, renewed_at=now)).rowcount
        if kept != 1:
            self.lost = f"the {self.name!r} lock was taken over by another run"
            return False
        self._renewed = time.monotonic()
        return True

    def check(self) -> None:
        """Raise RefreshConflict when the lease is lost, or may be: not renewed for a whole ttl."""
        if self.lost is None and time.monotonic() - self._renewed > self.ttl.total_seconds():
            self.lost = f"the {self.name!r} lock was not renewed for {self.ttl}; another run may hold it now"
        if self.lost is not None:
            raise RefreshConflict(f"{self.lost}; this run stopped before writing anything more")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        try:
            with self.registry.session() as s:
                s.execute(delete(Lock).where(Lock.name == self.name, Lock.owner == self.owner))
        except SQLAlchemyError as exc:  # never hide the error that ended the work; the lease expires by itself
            log.warning("could not release the %r lock (it expires within %s): %s", self.name, self.ttl, exc)

    def start_heartbeat(self) -> None:
        self._thread = threading.Thread(target=self._beat, name=f"lease-{self.name}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat.total_seconds()):
            try:
                if not self.renew():
                    log.error("%s", self.lost)
                    return
            except SQLAlchemyError as exc:  # the registry may come back before the lease runs out: keep trying
                log.warning("could not renew the %r lock: %s", self.name, exc)


@contextmanager
def registry_lock(registry, name: str, ttl: timedelta | None = None, *, heartbeat: timedelta | None = None,
                  clock: Clock = database_now) -> Iterator[Lease]:
    """Hold a named lease across processes and hosts, renewed in the background; released on exit."""
    lease = Lease(registry, name, ttl or DEFAULT_TTL, heartbeat, clock).acquire()
    lease.start_heartbeat()
    try:
        yield lease
    finally:
        lease.release()


def lease_settings(settings) -> dict:
    """registry_lock's ttl and heartbeat from Settings (RAGOPS_LOCK_TTL_S, RAGOPS_LOCK_HEARTBEAT_S)."""
    return {"ttl": timedelta(seconds=settings.lock_ttl_s), "heartbeat": timedelta(seconds=settings.lock_heartbeat_s)}
