"""One vote slot per request id AND caller (docs/reliability.md, "What stays open" of the issue 23 attack round):
X-Request-ID is client-chosen, so two callers may send the same id; each votes on its own answer, neither vote
refuses or replaces the other's, and a third party still cannot vote on either."""

from datetime import datetime, timedelta, timezone

from support import events, rows
from ragops.feedback.votes import votes_with_events
from ragops.registry import Registry
from ragops.registry.models import Feedback

SHARED = {"X-Request-ID": "my-app-request-1"}


def test_two_callers_sharing_an_x_request_id_each_keep_their_own_vote(served):
    post = served(feedback_wait_s=0.2)
    desk = post("/v1/ask", {"question": "How are refresh guards applied?"}, key="desk", headers=SHARED)
    other = post("/v1/ask", {"question": "What does the refresh DAG do?"}, key="other", headers=SHARED)
    assert desk.json()["request_id"] == other.json()["request_id"] == SHARED["X-Request-ID"]
    rid = SHARED["X-Request-ID"]

    first = post("/v1/feedback", {"request_id": rid, "rating": "up"}, key="desk")
    second = post("/v1/feedback", {"request_id": rid, "rating": "down", "reason": "wrong"}, key="other")
    assert (first.status_code, second.status_code) == (200, 200), second.text
    assert first.json()["replaced"] is False and second.json()["replaced"] is False

    post.client.app.app.state.events.flush(10)
    asked_by = {e.question: e.user_hash for e in events(post.settings, request_id=rid)}
    by_caller = {v.user_hash: v for v in rows(post.settings, Feedback, request_id=rid)}
    assert by_caller.keys() == set(asked_by.values()) and len(by_caller) == 2
    assert by_caller[asked_by["How are refresh guards applied?"]].rating == "up"
    assert (by_caller[asked_by["What does the refresh DAG do?"]].rating,
            by_caller[asked_by["What does the refresh DAG do?"]].reason) == ("down", "wrong")

    # a third party (no key, or a key that never asked with this id) has no slot here, for either answer
    for refused in (post("/v1/feedback", {"request_id": rid, "rating": "down"}),
                    post("/v1/feedback", {"request_id": rid, "rating": "down"}, peer="198.51.100.9"),
                    post("/v1/feedback", {"request_id": rid, "rating": "down", "user_id": "bob"}, key="desk")):
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "unknown_request"

    # one caller's repeated vote replaces its own row, as before, and leaves the other's alone
    again = post("/v1/feedback", {"request_id": rid, "rating": "down", "reason": "outdated"}, key="desk")
    assert again.status_code == 200 and again.json()["replaced"] is True
    by_caller = {v.user_hash: (v.rating, v.reason) for v in rows(post.settings, Feedback, request_id=rid)}
    assert by_caller == {asked_by["How are refresh guards applied?"]: ("down", "outdated"),
                         asked_by["What does the refresh DAG do?"]: ("down", "wrong")}

    # the read the quality signals and the content gaps use joins each vote to its own caller's question
    registry = Registry(post.settings.registry_url)
    try:
        now = datetime.now(timezone.utc)
        joined = votes_with_events(registry, now - timedelta(hours=1), now + timedelta(hours=1))
    finally:
        registry.dispose()
    assert sorted((j["question"], j["reason"]) for j in joined) == [
        ("How are refresh guards applied?", "outdated"), ("What does the refresh DAG do?", "wrong")]
