import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect

from ragops.errors import RefreshConflict
from ragops.registry import Registry, registry_lock
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
    import socket

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with registry.session() as s:
        s.add(Lock(name="refresh", owner=f"{socket.gethostname()}:{dead.pid}",
                   expires_at=datetime.now(timezone.utc) + timedelta(hours=1)))
    with registry_lock(registry, "refresh"):
        with registry.session() as s:
            assert s.get(Lock, "refresh").owner.endswith(f":{os.getpid()}")


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
