"""POST /v1/feedback and what users type, attacked after landing (docs/reliability.md, "Attack round on issue 23"):
hostile bodies, terminal control sequences, and what held."""

import json

import pytest

from support import events, rows
from ragops.registry.models import Feedback

ESCAPES = "\x1b[2J\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\\r\x07\x9b31m\u202egnp.exe\u2066"


def test_control_sequences_never_reach_the_registry(served):
    """A question or comment is printed later by `ragops gaps` and shown on the RAG Ops page and in Slack: terminal
    escapes (clear screen, OSC 8 links, carriage return), C1 controls and bidirectional overrides are dropped before
    storage, whether redaction is on or off. Tabs and newlines of a comment stay."""
    for redact in (True, False):
        post = served(redact=redact)
        rid = post("/v1/ask", {"question": f"how do I refresh{ESCAPES}?"}).json()["request_id"]
        voted = post("/v1/feedback", {"request_id": rid, "rating": "down", "comment": f"line one\n\tline{ESCAPES}"})
        assert voted.status_code == 200
        post.client.app.app.state.events.flush(10)
        [event] = events(post.settings, request_id=rid)
        [vote] = rows(post.settings, Feedback, request_id=rid)
        for stored in (event.question, vote.comment, voted.json()["comment"]):
            assert not any(c in stored for c in "\x1b\r\x07\x9b\u202e\u2066"), repr(stored)
        assert event.question.startswith("how do I refresh") and vote.comment.startswith("line one\n\tline")


def test_hostile_bodies_get_a_4xx_in_json_never_a_500(served):
    """Found holding: each of these is refused with a clear 4xx; the one vote stored is unchanged by them."""
    post = served(feedback_wait_s=0.2)
    rid = post("/v1/ask", {"question": "How are refresh guards applied?"}).json()["request_id"]
    assert post("/v1/feedback", {"request_id": rid, "rating": "up", "comment": "fine"}).status_code == 200
    raw = {
        "lone surrogate": (f'{{"request_id": "{rid}", "rating": "down", "comment": "x \\ud800"}}', 422),
        "NaN rating": (f'{{"request_id": "{rid}", "rating": NaN}}', 422),
        "NaN flag": (f'{{"request_id": "{rid}", "rating": "down", "cited_followed": NaN}}', 422),
        "deep nesting": (f'{{"request_id": "{rid}", "rating": "down", "comment": ' + "[" * 5000 + "]" * 5000 + "}",
                         400),
        "object comment": (f'{{"request_id": "{rid}", "rating": "down", "comment": {{"a": 1}}}}', 422),
        "not an object": ("[1, 2, 3]", 422),
        "2,001 characters": (json.dumps({"request_id": rid, "rating": "down", "comment": "x" * 2001}), 422),
        "2 MB": (json.dumps({"request_id": rid, "rating": "down", "comment": "x" * 2_000_000}), 413),
        "truncated": (f'{{"request_id": "{rid}", "rat', 422),
    }
    for name, (body, status) in raw.items():
        refused = post.client.post("/v1/feedback", content=body.encode("utf-8", "surrogatepass"),
                                   headers={"X-Test-Peer": "203.0.113.7", "Content-Type": "application/json"})
        assert refused.status_code == status, (name, refused.status_code, refused.text[:200])
        assert refused.json()["error"]["code"] in ("invalid_request", "payload_too_large", "http_error"), name
    [vote] = rows(post.settings, Feedback, request_id=rid)
    assert (vote.rating, vote.comment) == ("up", "fine")


def test_a_replayed_vote_is_one_vote(served):
    """Found holding: the same vote sent five times (a retrying client, or a replay) leaves one row; each repeat says
    it replaced the vote before."""
    post = served()
    rid = post("/v1/ask", {"question": "How are refresh guards applied?"}).json()["request_id"]
    body = {"request_id": rid, "rating": "down", "reason": "wrong"}
    replaced = [post("/v1/feedback", body).json()["replaced"] for _ in range(5)]
    assert replaced == [False, True, True, True, True]
    assert len(rows(post.settings, Feedback, request_id=rid)) == 1


def test_a_registry_lost_mid_vote_is_a_503_not_a_500(served, monkeypatch):
    import ragops.feedback.votes as votes_module
    from ragops.errors import StoreUnavailable

    post = served()
    rid = post("/v1/ask", {"question": "How are refresh guards applied?"}).json()["request_id"]

    def away(*args):
        raise StoreUnavailable("the registry cannot be read: connection refused")

    monkeypatch.setattr(votes_module, "owns_event", away)
    lost = post("/v1/feedback", {"request_id": rid, "rating": "down"})
    assert lost.status_code == 503 and lost.json()["error"]["code"] == "store_unavailable", lost.text


def test_one_ipv6_network_is_one_caller(served):
    """Without a key the caller is its address; an IPv6 host commonly holds a whole /64, so one attacker could ask and
    vote as millions of "users" (each with a fresh rate limit), page the on-call through the quality-drift check
    and push a fake topic to the top of the content gaps. The /64 is one caller; IPv4 addresses stay as they were."""
    post = served(rate_limit_address="2/hour")
    first = post("/v1/ask", {"question": "How are refresh guards applied?"}, peer="2001:db8:1:2::a")
    second = post("/v1/ask", {"question": "What does the refresh DAG do?"}, peer="2001:db8:1:2:ffff::b")
    third = post("/v1/ask", {"question": "Where do reports go?"}, peer="2001:db8:1:2::c")
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
    assert post("/v1/ask", {"question": "Where do reports go?"}, peer="2001:db8:1:3::a").status_code == 200
    mapped = post("/v1/ask", {"question": "Where do reports go?"}, peer="::ffff:198.51.100.4")
    assert post("/v1/ask", {"question": "Where do reports go?"}, peer="198.51.100.4").status_code == 200
    assert mapped.status_code == 200 and post("/v1/ask", {"question": "x"}, peer="198.51.100.4").status_code == 429

    post.client.app.app.state.events.flush(10)
    asked = {e.request_id: e.user_hash for e in events(post.settings)}
    assert asked[first.json()["request_id"]] == asked[second.json()["request_id"]]
    voted = post("/v1/feedback", {"request_id": first.json()["request_id"], "rating": "down"}, peer="2001:db8:1:3::a")
    assert voted.status_code == 404  # another /64 is another caller: not its request
