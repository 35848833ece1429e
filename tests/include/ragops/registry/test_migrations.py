"""A registry stamped with any revision ragops has shipped still upgrades to head, so no revision may be folded away."""

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from ragops.registry import Registry
from ragops.registry.db import MIGRATIONS

SHIPPED = [f"{n:04d}" for n in range(1, 11)]  # 0008 and 0009 change nothing, but registries may be stamped with them


@pytest.fixture(scope="module")
def head_tables(tmp_path_factory):
    registry = Registry(f"sqlite:///{tmp_path_factory.mktemp('head') / 'r.sqlite'}")
    yield set(inspect(registry.engine).get_table_names())
    registry.dispose()


@pytest.mark.parametrize("stamped", SHIPPED)
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
