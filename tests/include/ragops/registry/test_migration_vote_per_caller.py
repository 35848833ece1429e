"""0016_vote_per_caller on SQLite and PostgreSQL: votes stored under 0014's one-vote-per-request rule survive the
upgrade, two callers may then hold a vote on one request id (never one caller twice), and the downgrade keeps the
vote cast first on each id before the old rule comes back."""

from datetime import datetime, timezone

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from ragops.registry import Registry
from ragops.registry.db import MIGRATIONS

BEFORE, AFTER = "0015c_content_gaps", "0016_vote_per_caller"
INSERT = text("INSERT INTO feedback (ts, request_id, user_hash, rating) VALUES (:ts, :rid, :user, :rating)")


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'r.sqlite'}"
    return request.getfixturevalue("empty_postgres_url")


def migrate(url, revision, down=False):
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    registry = Registry(url, migrate=False)
    try:
        with registry.engine.begin() as connection:
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)
    finally:
        registry.dispose()


def cast(url, *votes):
    """Insert (request id, user hash, rating) rows, each in its own transaction: the refused ones are returned."""
    registry, refused = Registry(url, migrate=False), []
    try:
        for rid, user, rating in votes:
            try:
                with registry.engine.begin() as connection:
                    connection.execute(INSERT, {"ts": datetime.now(timezone.utc), "rid": rid, "user": user,
                                                "rating": rating})
            except IntegrityError:
                refused.append((rid, user, rating))
        with registry.engine.connect() as connection:
            stored = connection.execute(text("SELECT request_id, user_hash, rating FROM feedback ORDER BY id")).all()
    finally:
        registry.dispose()
    return refused, [tuple(row) for row in stored]


def test_votes_survive_and_the_slot_becomes_request_and_caller_and_back(url):
    migrate(url, BEFORE)
    refused, stored = cast(url, ("r1", "ann", "up"), ("r2", "bob", "down"), ("r1", "bob", "down"))
    assert refused == [("r1", "bob", "down")]  # the defect: one slot per request id
    assert stored == [("r1", "ann", "up"), ("r2", "bob", "down")]

    migrate(url, AFTER)
    refused, stored = cast(url, ("r1", "bob", "down"), ("r1", "ann", "down"))
    assert refused == [("r1", "ann", "down")]  # one caller still has one slot per request
    assert stored == [("r1", "ann", "up"), ("r2", "bob", "down"), ("r1", "bob", "down")]

    migrate(url, BEFORE, down=True)
    refused, stored = cast(url, ("r1", "carl", "up"))
    assert refused == [("r1", "carl", "up")]
    assert stored == [("r1", "ann", "up"), ("r2", "bob", "down")]  # the vote cast first on r1 stays

    migrate(url, "head")
    assert cast(url, ("r1", "bob", "up"))[0] == []
