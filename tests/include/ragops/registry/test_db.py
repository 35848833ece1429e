import os
import socket
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect

from ragops.config import Settings
from ragops.errors import RefreshConflict, StoreUnavailable
from ragops.registry import Lease, Registry, registry_lock
from ragops.registry.lease import lease_settings
from ragops.registry.models import Lock

TABLES = {"documents", "chunks", "staged_chunks", "embedding_cache", "refresh_runs", "index_versions", "quarantine", "locks"}


@pytest.fixture(params=["sqlite", "postgres"])
def registry(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    reg = Registry(url)
    yield reg
    reg.dispose()


def test_migrations_create_every_table_and_are_idempotent(registry):
    registry.migrate()  # a second upgrade is a no-op
    assert TABLES <= set(inspect(registry.engine).get_table_names())


def test_lock_excludes_a_second_holder(registry):
    with registry_lock(registry, "refresh"):
        with registry.session() as s:
            s.merge(Lock(name="refresh", owner="otherhost:1", expires_at=datetime.now(timezone.utc) + timedelta(hours=1)))
        with pytest.raises(RefreshConflict, match="otherhost"):
            with registry_lock(registry, "refresh"):
                pass


def test_lock_is_released_and_reacquired(registry):
    with registry_lock(registry, "refresh"):
        pass
    with registry_lock(registry, "refresh"):
        with registry.session() as s:
            assert s.get(Lock, "refresh") is not None
    with registry.session() as s:
        assert s.get(Lock, "refresh") is None


def test_lock_of_a_dead_process_is_taken_over(registry):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with registry.session() as s:
        s.add(Lock(name="refresh", owner=f"{socket.gethostname()}:{dead.pid}",
                   expires_at=datetime.now(timezone.utc) + timedelta(hours=1)))
    with registry_lock(registry, "refresh") as lease:
        with registry.session() as s:
            assert s.get(Lock, "refresh").owner.split(":")[1] == str(os.getpid())
        assert lease.took_over_from == f"{socket.gethostname()}:{dead.pid}"


def test_expired_lock_is_taken_over(registry):
    with registry.session() as s:
        s.add(Lock(name="refresh", owner="elsewhere:1", expires_at=datetime.now(timezone.utc) - timedelta(minutes=1)))
    with registry_lock(registry, "refresh"):
        pass


def test_first_refresh_gate_ignores_failed_runs_and_reindex_builds(tmp_path):
    from ragops.errors import FirstRefreshPending
    from ragops.registry.db import last_successful_refresh, require_first_refresh
    from ragops.registry.models import RefreshRun

    registry = Registry(f"sqlite:///{tmp_path / 'r.sqlite'}")
    with registry.session() as s:
        s.add(RefreshRun(source="file:///docs", status="failed", error="boom"))
        s.add(RefreshRun(source="file:///docs", status="succeeded", plan={"kind": "reindex"}))
    with pytest.raises(FirstRefreshPending, match="the probe has nothing to work on"):
        require_first_refresh(registry, "the probe")
    with registry.session() as s:
        s.add(RefreshRun(source="file:///docs", status="succeeded", plan={"added": []}))
    require_first_refresh(registry, "the probe")
    with registry.session() as s:
        assert last_successful_refresh(s).plan == {"added": []}


class FakeClock:
    """The registry's clock, moved by the test: expiry without waiting."""

    def __init__(self):
        self.now = datetime(2026, 1, 5, 3, 0, tzinfo=timezone.utc)

    def __call__(self, _session):
        return self.now


def test_a_lease_held_on_another_host_is_taken_over_once_it_expires(registry):
    clock = FakeClock()
    holder = Lease(registry, "refresh", ttl=timedelta(minutes=5), clock=clock).acquire()
    holder.owner, other = "another-host:4242:abcd", holder.owner  # as if a process elsewhere held it
    with registry.session() as s:
        s.get(Lock, "refresh").owner = "another-host:4242:abcd"
    clock.now += timedelta(minutes=4)
    with pytest.raises(RefreshConflict, match="another-host:4242"):
        Lease(registry, "refresh", ttl=timedelta(minutes=5), clock=clock).acquire()
    clock.now += timedelta(minutes=2)  # the holder stopped renewing five minutes ago: no pid check can tell
    taker = Lease(registry, "refresh", ttl=timedelta(minutes=5), clock=clock).acquire()
    assert taker.took_over_from == "another-host:4242:abcd"
    assert not holder.renew() and holder.lost  # the old holder, if it wakes up, learns it lost the lease
    with pytest.raises(RefreshConflict, match="taken over"):
        holder.check()
    taker.release()


def test_a_renewed_lease_is_not_taken_over(registry):
    clock = FakeClock()
    holder = Lease(registry, "refresh", ttl=timedelta(minutes=5), clock=clock).acquire()
    for _ in range(4):  # a long embedding: renewed every 3 minutes, 12 minutes in all
        clock.now += timedelta(minutes=3)
        assert holder.renew()
        with pytest.raises(RefreshConflict):
            Lease(registry, "refresh", ttl=timedelta(minutes=5), clock=clock).acquire()
    holder.check()
    holder.release()


def test_the_heartbeat_renews_in_the_background(registry):
    with registry_lock(registry, "refresh", ttl=timedelta(seconds=30), heartbeat=timedelta(seconds=0.05)) as lease:
        with registry.session() as s:
            first = s.get(Lock, "refresh").renewed_at
        renewed = first
        for _ in range(600):  # bounded: the thread renews every 50 ms; no assertion on how fast
            with registry.session() as s:
                renewed = s.get(Lock, "refresh").renewed_at
            if renewed != first:
                break
            threading.Event().wait(0.05)
        assert renewed != first
        lease.check()


def test_lease_timing_comes_from_settings():
    assert lease_settings(Settings(lock_ttl_s=120, lock_heartbeat_s=30)) == {
        "ttl": timedelta(seconds=120), "heartbeat": timedelta(seconds=30)}
    with pytest.raises(ValueError, match="half"):
        Settings(lock_ttl_s=60, lock_heartbeat_s=45)


def test_a_registry_that_is_not_a_database_is_store_unavailable(tmp_path):
    path = tmp_path / "registry.sqlite"
    path.write_bytes(b"SQLite format 3\x00" + b"\x17" * 500)  # a truncated, garbled file
    with pytest.raises(StoreUnavailable, match="cannot be read"):
        Registry(f"sqlite:///{path}")
