"""Retention: old question text and comments are cleared in batches; counts, ratings and scores stay."""

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from ragops.feedback.retention import cutoff, purge
from ragops.feedback.votes import store_vote
from ragops.monitoring.events import EventWriter, request_event
from ragops.registry import Registry
from ragops.registry.models import Feedback, RequestEvent
from ragops.releases import hash_user

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def seed(registry, days_ago, n, prefix):
    writer = EventWriter(registry)
    for i in range(n):
        writer.record("request", **request_event(f"{prefix}{i}", "/v1/ask", "u", 200, 5.0, question=f"question {i}",
                                                 query=f"condensed {i}", similarity=0.5, coverage=0.4),
                      ts=NOW - timedelta(days=days_ago))
    writer.close()
    for i in range(n):
        store_vote(registry, f"{prefix}{i}", hash_user("u"), "down", "wrong", f"comment {i}",
                   now=NOW - timedelta(days=days_ago))


def test_purge_clears_old_text_keeps_aggregates_and_is_idempotent(settings):
    settings.ensure_home()
    registry = Registry(settings.registry_url)
    seed(registry, 120, 7, "old")
    seed(registry, 10, 3, "new")
    before = cutoff(settings.model_copy(update={"question_retention_days": 90}), NOW)

    dry = purge(registry, before, dry_run=True)
    assert (dry.events, dry.comments) == (7, 7)
    with registry.session() as s:
        assert s.scalar(select(func.count()).where(RequestEvent.question.is_not(None))) == 10  # dry run changed none

    done = purge(registry, before, batch=3)  # several batches
    assert (done.events, done.comments) == (7, 7)
    with registry.session() as s:
        events = s.scalars(select(RequestEvent).order_by(RequestEvent.id)).all()
        votes = s.scalars(select(Feedback).order_by(Feedback.id)).all()
    assert len(events) == 10 and len(votes) == 10  # rows stay: counts remain
    old = [e for e in events if e.request_id.startswith("old")]
    assert all(e.question is None and e.query is None for e in old)
    assert all(e.similarity == 0.5 and e.coverage == 0.4 and e.status == 200 for e in old)
    assert all(e.question for e in events if e.request_id.startswith("new"))
    assert [v.comment is None for v in votes] == [True] * 7 + [False] * 3
    assert all(v.rating == "down" and v.reason == "wrong" for v in votes)

    again = purge(registry, before)
    assert (again.events, again.comments) == (0, 0)
    registry.dispose()



def test_a_run_dated_in_the_future_clears_nothing_newer_than_the_retention_period(settings):
    """A manual run given a logical date years ahead must not clear text that is not yet old: the cut-off is never
    later than now minus the retention period."""
    settings.ensure_home()
    registry = Registry(settings.registry_url)
    now = datetime.now(timezone.utc)
    writer = EventWriter(registry)
    writer.record("request", **request_event("recent", "/v1/ask", "u", 200, 5.0, question="kept"), ts=now)
    writer.close()
    cfg = settings.model_copy(update={"question_retention_days": 90})
    assert cutoff(cfg, now + timedelta(days=3650)) <= datetime.now(timezone.utc) - timedelta(days=90)
    assert purge(registry, cutoff(cfg, now + timedelta(days=3650))).events == 0
    with registry.session() as s:
        assert s.scalar(select(RequestEvent.question)) == "kept"
    registry.dispose()


def test_a_batch_below_one_is_refused_rather_than_looping(settings):
    import pytest

    settings.ensure_home()
    registry = Registry(settings.registry_url)
    seed(registry, 120, 1, "old")
    for batch in (0, -5):
        with pytest.raises(ValueError):
            purge(registry, NOW, batch=batch)
    registry.dispose()


def test_each_batch_starts_after_the_last_one_so_a_huge_table_is_read_once(settings):
    """Keyset batches: every SELECT after the first is bounded below by the last id the previous batch cleared, so
    the rows already cleared are not read again on every batch (quadratic on a table of millions)."""
    from sqlalchemy import event

    settings.ensure_home()
    registry = Registry(settings.registry_url)
    seed(registry, 120, 7, "old")
    selects = []

    def watch(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "FROM request_events" in statement:
            selects.append((statement, parameters))

    event.listen(registry.engine, "before_cursor_execute", watch)
    try:
        assert purge(registry, NOW, batch=3).events == 7
    finally:
        event.remove(registry.engine, "before_cursor_execute", watch)
    assert len(selects) == 3  # 3 + 3 + 1
    assert all("request_events.id >" in statement for statement, _ in selects[1:])
    registry.dispose()
