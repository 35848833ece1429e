"""Engine, sessions, migrations and the advisory lock of the registry."""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, delete, event, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ragops.errors import FirstRefreshPending, RefreshConflict, StoreUnavailable
from ragops.logs import quiet_libraries
from ragops.registry.models import Lock

MIGRATIONS = Path(__file__).with_name("migrations")


class Registry:
    """A handle on the registry database: `with registry.session() as s:` commits on success."""

    def __init__(self, url: str, *, migrate: bool = True):
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if migrate:
            self.migrate()

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (a no-op when it is already there)."""
        from alembic import command
        from alembic.config import Config

        quiet_libraries()
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as connection:
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, "head")
        except OperationalError as exc:
            raise StoreUnavailable(f"the registry at {self.safe_url} cannot be reached: {exc.orig}") from exc

    @property
    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the serving app read while a refresh writes; foreign keys make cascades real.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _holder_is_dead(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@contextmanager
def registry_lock(registry: Registry, name: str, ttl: timedelta = timedelta(hours=2)) -> Iterator[None]:
    """Hold a named lock across processes and hosts; a holder that died or expired is replaced."""
    owner = _owner()
    now = datetime.now(timezone.utc)
    with registry.session() as s:
        try:
            s.add(Lock(name=name, owner=owner, acquired_at=now, expires_at=now + ttl))
            s.flush()
        except IntegrityError:
            s.rollback()
            held = s.get(Lock, name)
            if held is None:
                raise RefreshConflict(f"lock {name!r} changed hands while acquiring; try again") from None
            expires = held.expires_at if held.expires_at.tzinfo else held.expires_at.replace(tzinfo=timezone.utc)
            if not (expires < now or _holder_is_dead(held.owner)):
                raise RefreshConflict(
                    f"another run holds the {name!r} lock ({held.owner}, since {held.acquired_at:%Y-%m-%d %H:%M}Z)"
                ) from None
            taken = s.execute(
                update(Lock)
                .where(Lock.name == name, Lock.owner == held.owner)
                .values(owner=owner, acquired_at=now, expires_at=now + ttl)
            ).rowcount
            if taken != 1:
                raise RefreshConflict(f"lock {name!r} was taken by another run; try again") from None
    try:
        yield
    finally:
        with registry.session() as s:
            s.execute(delete(Lock).where(Lock.name == name, Lock.owner == owner))


def live_index_version(session: Session):
    from ragops.registry.models import IndexVersion

    return session.scalars(
        select(IndexVersion).where(IndexVersion.status == "live").order_by(IndexVersion.id.desc()).limit(1)
    ).first()


def resolve_index_version(session: Session, version_id: int):
    """The newest version of the collection that `version_id` belongs to.

    A release pins a collection through one of its versions; refreshes of that collection then keep the release
    current, while another collection (a blue/green candidate, or the one before a promotion) stays untouched.
    """
    from ragops.registry.models import IndexVersion

    pinned = session.get(IndexVersion, version_id)
    if pinned is None:
        return None
    return session.scalars(
        select(IndexVersion)
        .where(IndexVersion.collection == pinned.collection, IndexVersion.status != "rejected")
        .order_by(IndexVersion.id.desc()).limit(1)
    ).first() or pinned


def last_successful_refresh(session: Session):
    """The newest refresh run that succeeded on the live collection (a blue/green reindex build does not count)."""
    from ragops.registry.models import RefreshRun

    runs = session.scalars(select(RefreshRun).where(RefreshRun.status == "succeeded").order_by(RefreshRun.id.desc()))
    return next((run for run in runs if (run.plan or {}).get("kind") != "reindex"), None)


def require_first_refresh(registry: Registry, waiting: str) -> None:
    """Raise FirstRefreshPending until a document refresh has succeeded; `waiting` names who waits for it."""
    with registry.session() as s:
        if last_successful_refresh(s) is None:
            raise FirstRefreshPending(f"no document refresh has succeeded yet, so {waiting} has nothing to work on; "
                                      "it starts after the first successful document_refresh run")
