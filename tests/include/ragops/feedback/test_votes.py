"""Votes: one row per request and caller, only from the caller who asked, early votes wait for their event; SQLite
and PostgreSQL."""

import threading
from datetime import datetime, timedelta, timezone

import anyio
import pytest
from sqlalchemy import select

from ragops.errors import StoreUnavailable, UnknownRequest
from ragops.feedback.redact import Redactor
from ragops.feedback.votes import store_vote, submit_vote, votes_with_events
from ragops.monitoring.events import EventWriter, request_event
from ragops.registry import Registry
from ragops.registry.models import Feedback
from ragops.releases import hash_user


@pytest.fixture(params=["sqlite", "postgres"])
def registry(request, settings):
    url = settings.registry_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    settings.ensure_home()
    reg = Registry(url)
    yield reg
    reg.dispose()


def asked(registry, request_id, user="addr:10.0.0.1", **kw):
    writer = EventWriter(registry)
    writer.record("request", **request_event(request_id, "/v1/ask", user, 200, 12.0, release_id=None,
                                             question="how do I refresh?", similarity=0.61, coverage=0.5, **kw))
    writer.close()


def rows(registry):
    with registry.session() as s:
        return s.scalars(select(Feedback).order_by(Feedback.id)).all()


def vote(registry, request_id, user="addr:10.0.0.1", rating="up", **kw):
    return anyio.run(lambda: submit_vote(registry, request_id, user, rating, **kw))


def test_a_second_vote_replaces_the_first(registry):
    asked(registry, "r1")
    first = vote(registry, "r1", rating="up")
    second = vote(registry, "r1", rating="down", reason="outdated", comment="see jane@example.com",
                  cited_followed=True, redact=Redactor())
    assert not first.replaced and second.replaced
    [row] = rows(registry)
    assert (row.rating, row.reason, row.comment, row.cited_followed) == ("down", "outdated", "see [email]", True)
    assert row.user_hash == hash_user("addr:10.0.0.1")


def test_unknown_and_foreign_ids_get_the_same_refusal(registry):
    asked(registry, "mine")
    with pytest.raises(UnknownRequest) as unknown:
        vote(registry, "nobody-asked-this")
    with pytest.raises(UnknownRequest) as foreign:
        vote(registry, "mine", user="addr:10.6.6.6")
    assert str(unknown.value) == str(foreign.value)
    assert rows(registry) == []


def test_a_reused_request_id_never_lets_one_caller_overwrite_anothers_vote(registry):
    """X-Request-ID is client-chosen: two callers can hold events with the same id; each keeps its own vote (one
    slot per request id and caller), and a repeat replaces only the caller's own."""
    asked(registry, "shared", user="addr:10.0.0.1")
    asked(registry, "shared", user="addr:10.0.0.2")
    assert not vote(registry, "shared", user="addr:10.0.0.1", rating="up").replaced
    assert not vote(registry, "shared", user="addr:10.0.0.2", rating="down", cited_followed=True).replaced
    assert vote(registry, "shared", user="addr:10.0.0.1", rating="down", reason="wrong").replaced
    assert {r.user_hash: (r.rating, r.reason, r.cited_followed) for r in rows(registry)} == {
        hash_user("addr:10.0.0.1"): ("down", "wrong", None), hash_user("addr:10.0.0.2"): ("down", None, True)}
    with pytest.raises(UnknownRequest):
        vote(registry, "shared", user="addr:10.0.0.3")


def test_concurrent_votes_on_one_request_leave_one_row(registry):
    asked(registry, "busy")
    user_hash = hash_user("addr:10.0.0.1")
    errors, start = [], threading.Barrier(8)

    def cast(i):
        start.wait()
        try:
            store_vote(registry, "busy", user_hash, "up" if i % 2 else "down")
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=cast, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(rows(registry)) == 1


def test_a_vote_that_arrives_before_its_event_waits_for_it(registry):
    """The writer holds the event while the registry refuses it, and writes it on its next try; the vote waits."""
    refusals = [2]

    def flaky():
        if refusals[0]:
            refusals[0] -= 1
            raise StoreUnavailable("registry away for a moment")
        return registry

    writer = EventWriter(flaky, interval_s=0.01)
    writer.record("request", **request_event("early", "/v1/ask", "addr:10.0.0.1", 200, 5.0))
    try:
        with pytest.raises(UnknownRequest):  # without waiting, the event is not there yet
            vote(registry, "early", wait_s=0)
        assert vote(registry, "early", wait_s=20).rating == "up"  # returns as soon as the event is stored
    finally:
        writer.close()
    assert len(rows(registry)) == 1


def test_votes_join_their_request_event(registry):
    asked(registry, "j1", variant="canary", fallback="no_results")
    vote(registry, "j1", rating="down", reason="no_answer")
    now = datetime.now(timezone.utc)
    [joined] = votes_with_events(registry, now - timedelta(hours=1), now + timedelta(hours=1))
    assert joined["question"] == "how do I refresh?" and joined["variant"] == "canary"
    assert joined["fallback"] == "no_results" and joined["similarity"] == pytest.approx(0.61)
    assert (joined["rating"], joined["reason"]) == ("down", "no_answer")


def test_long_request_ids_match_as_the_writer_stored_them(registry):
    long_id = "x" * 150
    asked(registry, long_id)
    assert vote(registry, long_id).rating == "up"


def test_wait_slots_let_cap_votes_wait_and_answer_the_rest_at_once():
    from ragops.feedback.votes import WaitSlots

    slots = WaitSlots(cap=2)
    with slots.wait(2.0) as first, slots.wait(2.0) as second, slots.wait(2.0) as third:
        assert (first, second, third) == (2.0, 2.0, 0.0) and slots.taken == 2
    with pytest.raises(UnknownRequest):
        with slots.wait(2.0):
            raise UnknownRequest("gone")
    with slots.wait(0.0) as none:
        assert none == 0.0 and slots.taken == 0  # a vote that would not wait takes no slot
    assert slots.taken == 0


def test_requests_refused_before_any_answer_cannot_be_voted_on(registry):
    """A 429 (or 401, 413, 422) was never answered: a vote on it would count against the release as if it had been.
    A 503 fallback was answered, with "the knowledge base is unavailable", and may be voted down."""
    writer = EventWriter(registry)
    for rid, status in (("limited", 429), ("invalid", 422), ("unavailable", 503)):
        writer.record("request", **request_event(rid, "/v1/ask", "addr:10.0.0.1", status, 1.0))
    writer.close()
    for rid in ("limited", "invalid"):
        with pytest.raises(UnknownRequest):
            vote(registry, rid, rating="down", reason="no_answer")
    assert vote(registry, "unavailable", rating="down", reason="no_answer").rating == "down"
    assert [r.request_id for r in rows(registry)] == ["unavailable"]


def test_hostile_comments_are_stored_bounded(registry):
    """NUL (refused by PostgreSQL in text), a lone surrogate (no encoder takes it) and a comment that redaction
    makes longer than COMMENT_MAX are all stored, bounded, never a failed vote."""
    from ragops.feedback.votes import COMMENT_MAX

    asked(registry, "h1")
    stored = vote(registry, "h1", comment="a\x00b \ud800 see a@b.io", redact=Redactor()).comment
    assert stored == "ab ? see [email]"  # NUL is a control character: redaction drops it (bound_text would replace it)
    asked(registry, "h2")
    longer = vote(registry, "h2", comment="a@b.io " * (COMMENT_MAX // 7), redact=Redactor()).comment
    assert len(longer) <= COMMENT_MAX and longer.startswith("[email] [email]")
    assert [r.comment for r in rows(registry)] == [stored, longer]
