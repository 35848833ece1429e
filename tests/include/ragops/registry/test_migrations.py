"""A registry stamped with any revision ragops has shipped still upgrades to head, so no revision may be folded away."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from ragops.registry import Registry
from ragops.registry.db import MIGRATIONS

SHIPPED = [f"{n:04d}" for n in range(1, 11)]  # 0008 and 0009 change nothing, but registries may be stamped with them
# ... and every revision added since: a new one is covered without editing the list above
REVISIONS = sorted(set(SHIPPED) | {r.revision for r in ScriptDirectory(str(MIGRATIONS)).walk_revisions()})


@pytest.fixture(scope="module")
def head_tables(tmp_path_factory):
    registry = Registry(f"sqlite:///{tmp_path_factory.mktemp('head') / 'r.sqlite'}")
    yield set(inspect(registry.engine).get_table_names())
    registry.dispose()


@pytest.mark.parametrize("stamped", REVISIONS)
def test_a_registry_at_any_shipped_revision_upgrades_to_head(tmp_path, head_tables, stamped):
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    old = Registry(f"sqlite:///{tmp_path / 'r.sqlite'}", migrate=False)
    with old.engine.begin() as connection:  # as `alembic upgrade <stamped>` leaves it
        config.attributes["connection"] = connection
        command.upgrade(config, stamped)
    old.dispose()
    registry = Registry(old.url)
    with registry.engine.connect() as connection:
        version = connection.execute(text("select version_num from alembic_version")).scalar()
    assert version == ScriptDirectory.from_config(config).get_current_head()
    assert set(inspect(registry.engine).get_table_names()) == head_tables
    registry.dispose()


def test_an_empty_postgresql_database_migrates_to_head_and_again_changes_nothing(empty_postgres_url, head_tables):
    """The other PostgreSQL tests copy a registry migrated once per session: this one migrates from nothing."""
    registry = Registry(empty_postgres_url)
    try:
        assert set(inspect(registry.engine).get_table_names()) == head_tables
        registry.migrate()
        with registry.engine.connect() as connection:
            assert connection.execute(text("select count(*) from alembic_version")).scalar() == 1
    finally:
        registry.dispose()


FIRST_OPEN = """
import sys, time
from pathlib import Path
from ragops.registry import Registry
Path(sys.argv[2] + '.ready').touch()
while not Path(sys.argv[2]).exists():  # every process starts its migration at the same moment
    time.sleep(0.002)
Registry(sys.argv[1]).dispose()
"""


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'home' / 'r.sqlite'}"
    return request.getfixturevalue("empty_postgres_url")


def test_first_refreshes_at_once_on_a_fresh_registry_all_migrate_and_none_fails(fresh_url, tmp_path, head_tables):
    """Two (here three) first refreshes racing on an empty database: the losers wait for the winner's migration."""
    go = tmp_path / "go"
    racers = [subprocess.Popen([sys.executable, "-c", FIRST_OPEN, fresh_url, f"{go}{i}"], stderr=subprocess.PIPE,
                               text=True) for i in range(3)]
    while not all(Path(f"{go}{i}.ready").exists() for i in range(3)):
        time.sleep(0.01)
    for i in range(3):
        Path(f"{go}{i}").touch()
    errors = [racer.communicate()[1] for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0, 0], errors
    registry = Registry(fresh_url, migrate=False)
    try:
        assert set(inspect(registry.engine).get_table_names()) == head_tables
        with registry.engine.connect() as connection:
            assert connection.execute(text("select count(*) from alembic_version")).scalar() == 1
    finally:
        registry.dispose()
