"""The access log's tests run on SQLite and on PostgreSQL alike (a module may override `registry`)."""

import pytest

from ragops.registry import Registry


@pytest.fixture(params=["sqlite", "postgres"])
def registry(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'r.sqlite'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    registry = Registry(url)
    yield registry
    registry.dispose()
