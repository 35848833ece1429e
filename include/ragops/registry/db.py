"""Engine, sessions and migrations of the registry (its leases are in ragops.registry.lease)."""

from __future__ import annotations

import fcntl
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import (ArgumentError, DatabaseError, DBAPIError, InterfaceError, NoSuchModuleError,
                            OperationalError)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from ragops.config import mask_url
from ragops.errors import ConfigError, FirstRefreshPending, StoreUnavailable
from ragops.logs import quiet_libraries

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK_ID = 0x7261676F70  # the PostgreSQL advisory lock key that serialises migrations ("ragop")


class Registry:
    """A handle on the registry database: `with registry.session() as s:` commits on success."""

    def __init__(self, url: str, *, migrate: bool = True, statement_timeout_s: float | None = None):
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        connect_args = {}
        if url.startswith("postgresql"):  # a registry that is away or stuck answers within bounds, never hangs
            connect_args["connect_timeout"] = 10
            if statement_timeout_s:
                connect_args["options"] = f"-c statement_timeout={int(statement_timeout_s * 1000)}"
        try:
            self.engine: Engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
        except (ArgumentError, NoSuchModuleError, ValueError) as exc:  # ValueError: a port that is not a number
            raise ConfigError(f"the registry URL {mask_url(url)} cannot be used ({exc}); set RAGOPS_DATABASE_URL to "
                              "postgresql+psycopg://user:password@host:5432/name, or unset it for SQLite") from exc
        # A pooled SQLite connection answers from its page cache, so a file cut short after it was opened still reads
        # as fine through it: probe() opens a connection of its own there.
        self._probe_engine = self.engine
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            self._probe_engine = create_engine(url, poolclass=NullPool)
            event.listen(self._probe_engine, "connect", _sqlite_pragmas)
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
            with self._migrating() as connection:
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, "head")
        except DBAPIError as exc:
            if not unreadable(exc):
                raise
            raise StoreUnavailable(f"the registry at {self.safe_url} cannot be read: {exc.orig}") from exc

    @contextmanager
    def _migrating(self) -> Iterator[Connection]:
        """A transaction that no other process migrates alongside, held until it commits.

        Two first refreshes on an empty database would otherwise both create the tables, and the loser fail with
        "table documents already exists" (or a duplicate alembic_version row) and raise a false alert; the waiter
        finds the schema at head and changes nothing. PostgreSQL takes a transaction-scoped advisory lock, SQLite
        an flock on a file beside the database.
        """
        with ExitStack() as stack:
            database = self.engine.url.database
            if self.engine.dialect.name == "sqlite" and database and database != ":memory:":
                fcntl.flock(stack.enter_context(open(f"{database}.migrate.lock", "a")), fcntl.LOCK_EX)
            connection = stack.enter_context(self.engine.begin())
            if connection.dialect.name == "postgresql":
                connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_ID)))
            yield connection

    @property
    def safe_url(self) -> str:
        return mask_url(self.url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as s:
            try:
                yield s
                s.commit()
            except DBAPIError as exc:
                s.rollback()
                if unreadable(exc):  # one translation for every caller: the API's 503, the CLI's JSON error
                    raise StoreUnavailable(f"the registry cannot be read: {str(exc.orig)[:300]}") from exc
                raise
            except BaseException:
                s.rollback()
                raise

    def probe(self) -> None:
        """Read a table, as readiness does (`SELECT 1` reads none); StoreUnavailable when the registry cannot."""
        try:
            with self._probe_engine.connect() as connection:
                connection.execute(text("SELECT version_num FROM alembic_version")).all()
        except DBAPIError as exc:
            if not unreadable(exc):
                raise
            raise StoreUnavailable(f"the registry cannot be read: {str(exc.orig)[:300]}") from exc

    def dispose(self) -> None:
        self.engine.dispose()


def unreadable(exc: DBAPIError) -> bool:
    """The database is away, timed out, or its file is corrupt (as opposed to refusing one statement)."""
    return isinstance(exc, (OperationalError, InterfaceError)) or type(exc) is DatabaseError


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the serving app read while a refresh writes; foreign keys make cascades real.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


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
        .where(IndexVersion.collection == pinned.collection, IndexVersion.status.notin_(("rejected", "pruned")))
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
