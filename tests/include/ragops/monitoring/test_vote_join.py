"""A vote counts once, for the caller who cast it: request ids are client-chosen (X-Request-ID), so one id can name
several events, a client's retries or another caller's request. The quality signals and the content-gap analysis
must join a vote to its own caller's event, and to one of them."""

from datetime import datetime, timedelta, timezone

import pytest

from ragops.gaps.questions import failed_questions
from ragops.monitoring.quality import load_answers
from ragops.registry import Registry
from ragops.registry.models import Feedback, RequestEvent

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def registry(settings):
    settings.ensure_home()
    reg = Registry(settings.registry_url)
    yield reg
    reg.dispose()


def event(request_id, user, minute, question, fallback=None):
    return RequestEvent(ts=T0 + timedelta(minutes=minute), request_id=request_id, endpoint="/v1/ask", user_hash=user,
                        variant="stable", latency_ms=20.0, status=200, fallback=fallback, synthetic=False,
                        verified=True, question=question, similarity=0.6, coverage=0.7)


def write(registry, events, votes):
    with registry.session() as s:
        s.add_all(events + [Feedback(ts=T0 + timedelta(minutes=30), request_id=rid, user_hash=user, rating=rating)
                            for rid, user, rating in votes])


def test_one_vote_counts_once_and_only_for_its_caller(registry):
    write(registry, [
        event("shared", "victim", 1, "where are reports posted?"),  # asked first, under an id another caller reuses
        event("shared", "voter", 2, "how do I rotate keys?"),
        *[event("retry", "retrier", 3 + i, f"retried question {i}") for i in range(3)],  # one id, three events
    ], [("shared", "voter", "down"), ("retry", "retrier", "down")])
    answers = load_answers(registry, T0, T0 + timedelta(hours=1), ["/v1/ask"])
    votes = sorted((a.user, a.vote) for a in answers if a.vote)
    assert votes == [("retrier", "down"), ("voter", "down")]  # not the victim's, and the retrier's once


def test_a_down_vote_marks_only_its_callers_question_as_failed(registry):
    write(registry, [event("shared", "victim", 1, "where are reports posted?"),
                     event("shared", "voter", 2, "how do I rotate keys?")], [("shared", "voter", "down")])
    failed, _ = failed_questions(registry, T0, T0 + timedelta(hours=1), 100)
    assert [(q.user_hash, q.question, q.kind) for q in failed] == [("voter", "how do I rotate keys?", "down_voted")]


def test_two_callers_votes_on_one_shared_id_both_count_each_for_its_own_question(registry):
    """Since 0016_vote_per_caller two callers hold a vote each on one client-chosen id: every read of the votes counts
    both, each joined to its own caller's question, the quality signals, the content gaps and the training harvest."""
    from ragops.training.votes import _voted

    write(registry, [event("shared", "ann", 1, "where are reports posted?"),
                     event("shared", "bob", 2, "how do I rotate keys?")],
          [("shared", "ann", "up"), ("shared", "bob", "down")])
    answers = load_answers(registry, T0, T0 + timedelta(hours=1), ["/v1/ask"])
    assert sorted((a.user, a.vote) for a in answers) == [("ann", "up"), ("bob", "down")]
    failed, _ = failed_questions(registry, T0, T0 + timedelta(hours=1), 100)
    assert [(q.user_hash, q.question, q.kind) for q in failed] == [("bob", "how do I rotate keys?", "down_voted")]
    harvested = _voted(registry, T0)
    assert sorted((v["user_hash"], v["question"], v["rating"]) for v in harvested) == [
        ("ann", "where are reports posted?", "up"), ("bob", "how do I rotate keys?", "down")]
