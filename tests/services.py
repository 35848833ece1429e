"""The local services the production-path tests use: found on their default ports when no URL is given.

`make test` then runs the PostgreSQL and Redis suites wherever those services answer, as `.ci/run` does with its
explicit URLs; where one does not, the run ends with one line saying which suites were skipped and why.
"""

from __future__ import annotations

import os
import socket

DEFAULTS = {
    "RAGOPS_TEST_DATABASE_URL": ("PostgreSQL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", 5432),
    "RAGOPS_TEST_REDIS_URL": ("Redis", "redis://127.0.0.1:6379/15", 6379),
}


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def _usable(env: str, url: str) -> str | None:
    """None when the service takes the default URL, else why not."""
    try:
        if env == "RAGOPS_TEST_DATABASE_URL":
            from sqlalchemy import create_engine, text

            engine = create_engine(url, connect_args={"connect_timeout": 3})
            try:
                with engine.connect() as c:
                    c.execute(text("SELECT 1"))
            finally:
                engine.dispose()
        else:
            import redis

            redis.Redis.from_url(url, socket_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable here", reported with its text
        return f"{url} refused the connection: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
    return None


def detect() -> dict[str, str]:
    """Export the default URL of each service that answers; return {service: why it is not used} for the rest."""
    missing = {}
    for env, (name, url, port) in DEFAULTS.items():
        if os.environ.get(env):
            continue
        why = _usable(env, url) if _answers(port) else f"nothing answers on 127.0.0.1:{port} and {env} is unset"
        if why is None:
            os.environ[env] = url
        else:
            missing[name] = why
    return missing
