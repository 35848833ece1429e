"""The production path on this machine's real services: Airflow's CeleryExecutor with two workers, the refresh lease,
serving replicas. Everything runs on the local PostgreSQL (RAGOPS_TEST_DATABASE_URL) and Redis (RAGOPS_TEST_REDIS_URL);
the tests skip, saying why, when either is not configured or does not answer. Each test creates what it uses (throw-away
databases, Redis keys under a prefix of its own, processes in their own process groups on 127.0.0.1 free ports) and
removes it afterwards. When a test fails, the logs of the processes it started are printed with the failure.
"""

from __future__ import annotations

import os

import pytest

from production_support import LOG_FILES, tail


@pytest.fixture(scope="session")
def pg_base() -> str:
    """The URL of the local PostgreSQL server (trust auth), checked to answer."""
    url = os.environ.get("RAGOPS_TEST_DATABASE_URL")
    if not url:
        pytest.skip("RAGOPS_TEST_DATABASE_URL is not set: no PostgreSQL for the production-path tests")
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as c:
            c.execute(text("SELECT 1"))
    except OperationalError as exc:
        pytest.skip(f"PostgreSQL at {engine.url.render_as_string(hide_password=True)} does not answer: {exc.orig}")
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def redis_base() -> str:
    """The URL of the local Redis (a DB number of this checkout's own), checked to answer."""
    url = os.environ.get("RAGOPS_TEST_REDIS_URL")
    if not url:
        pytest.skip("RAGOPS_TEST_REDIS_URL is not set: no Redis for the production-path tests")
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at {url} does not answer: {exc}")
    finally:
        client.close()
    return url


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        seen = []
        for node in (item, item.getparent(pytest.Module)):
            for entry in node.stash.get(LOG_FILES, []) if node is not None else []:
                for path in sorted(entry.rglob("*.log")) if entry.is_dir() else [entry]:
                    if path in seen:
                        continue
                    seen.append(path)
                    report.sections.append((f"log: {path} (last lines)", tail(path, 60)))
    return report
