"""POST /v1/feedback and the MCP tool rate_answer, through the real app: one vote per request, only the caller who
asked may vote, the limits of /v1/ask apply, and what users type is redacted before it is stored."""

import json

import pytest
from sqlalchemy import select

from support import events, live_server, rows, samples
from ragops.audit.permissions import hash_token
from ragops.registry import Registry
from ragops.registry.models import Feedback, McpAccessLog


def votes(settings):
    return rows(settings, Feedback)


def test_vote_up_then_down_keeps_one_row_and_counts_on_metrics(served):
    post = served()
    asked = post("/v1/ask", {"question": "How are refresh guards applied?"})
    assert asked.status_code == 200
    rid = asked.json()["request_id"]

    up = post("/v1/feedback", {"request_id": rid, "rating": "up", "cited_followed": True})
    assert up.status_code == 200, up.text  # the event may still be queued: the vote waits for it
    assert up.json()["rating"] == "up" and up.json()["replaced"] is False
    down = post("/v1/feedback", {"request_id": rid, "rating": "down", "reason": "outdated",
                                 "comment": "wrong for me, mail ops@example.com or call 0049 170 1234567"})
    assert down.status_code == 200 and down.json()["replaced"] is True
    assert down.json()["cited_followed"] is True  # a citation once opened stays opened
    assert down.json()["comment"] == "wrong for me, mail [email] or call [number]"

    [row] = votes(post.settings)
    assert (row.request_id, row.rating, row.reason, row.cited_followed) == (rid, "down", "outdated", True)
    assert "example.com" not in row.comment
    metrics = samples(post.client.get("/metrics").text)
    assert metrics[("ragops_feedback_total", (("rating", "up"), ("reason", "none")))] == 1
    assert metrics[("ragops_feedback_total", (("rating", "down"), ("reason", "outdated")))] == 1
    assert metrics[("ragops_feedback_replaced_total", ())] == 1


def test_unknown_and_foreign_ids_get_the_same_404(served):
    post = served(feedback_wait_s=0.2)
    mine = post("/v1/ask", {"question": "What does the refresh DAG do?"}, key="desk").json()["request_id"]
    from_address = post("/v1/ask", {"question": "What does the refresh DAG do?"}).json()["request_id"]
    for_user = post("/v1/ask", {"question": "Where do reports go?", "user_id": "ann"}, key="desk").json()["request_id"]

    unknown = post("/v1/feedback", {"request_id": "never-issued", "rating": "up"}, key="desk")
    other_key = post("/v1/feedback", {"request_id": mine, "rating": "down"}, key="other")
    no_key = post("/v1/feedback", {"request_id": mine, "rating": "down"})
    other_address = post("/v1/feedback", {"request_id": from_address, "rating": "down"}, peer="198.51.100.9")
    other_user = post("/v1/feedback", {"request_id": for_user, "rating": "down", "user_id": "bob"}, key="desk")
    for refused in (unknown, other_key, no_key, other_address, other_user):
        assert refused.status_code == 404
        assert refused.json()["error"] == unknown.json()["error"]
        assert refused.json()["error"]["code"] == "unknown_request"
    assert votes(post.settings) == []

    assert post("/v1/feedback", {"request_id": mine, "rating": "up"}, key="desk").status_code == 200
    assert post("/v1/feedback", {"request_id": from_address, "rating": "up"}).status_code == 200
    assert post("/v1/feedback", {"request_id": for_user, "rating": "up", "user_id": "ann"}, key="desk").status_code == 200
    assert len(votes(post.settings)) == 3


@pytest.mark.parametrize("body", [
    {"request_id": "r", "rating": "up", "comment": "x" * 2001},
    {"request_id": "r", "rating": "sideways"},
    {"request_id": "r", "rating": "down", "reason": "boring"},
    {"request_id": "r", "rating": "up", "score": 5},
    {"request_id": "", "rating": "up"},
    {"request_id": "r" * 201, "rating": "up"},
    {"request_id": "has space", "rating": "up"},
])
def test_invalid_votes_are_422_in_json(served, body):
    post = served()
    refused = post("/v1/feedback", body)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_request"


def test_a_bad_api_key_is_refused_as_for_ask(served):
    post = served()
    refused = post.client.post("/v1/feedback", json={"request_id": "r", "rating": "up"},
                               headers={"Authorization": "Bearer not-a-key"})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"


def test_votes_share_the_callers_budget_with_ask(served):
    post = served(rate_limit_address="3/hour")
    rid = post("/v1/ask", {"question": "How are refresh guards applied?"}).json()["request_id"]
    assert post("/v1/feedback", {"request_id": rid, "rating": "up"}).status_code == 200
    assert post("/v1/feedback", {"request_id": rid, "rating": "down"}).status_code == 200
    refused = post("/v1/feedback", {"request_id": rid, "rating": "up"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert refused.json()["error"]["code"] == "rate_limited" and refused.json()["fallback"] == "rate_limited"
    assert votes(post.settings)[0].rating == "down"  # the refused vote changed nothing
    assert post("/v1/feedback", {"request_id": rid, "rating": "up"}, peer="198.51.100.1").status_code == 404


def test_questions_are_redacted_before_the_request_event_is_stored(served):
    post = served()
    rid = post("/v1/ask", {"question": "my key sk-live-Abcdefghijklmnopqrstu1 fails, mail jo@corp.io"}).json()["request_id"]
    post.client.app.app.state.events.flush(10)
    [event] = events(post.settings, request_id=rid)
    assert event.question == "my key [secret] fails, mail [email]"


def test_redaction_can_be_switched_off(served):
    post = served(redact=False)
    rid = post("/v1/search", {"question": "mail jo@corp.io"}).json()["request_id"]
    post.client.app.app.state.events.flush(10)
    assert events(post.settings, request_id=rid)[0].question == "mail jo@corp.io"


# -- MCP ------------------------------------------------------------------------------------------------------------


@pytest.fixture
def mcp_app(indexed, embedder, tmp_path):
    from ragops.answer.pipeline import AnswerService
    from serving.app import create_app

    permissions = tmp_path / "mcp-permissions.yaml"
    permissions.write_text(json.dumps({"clients": [
        # a grant scoped to the candidate collection still rates: rate_answer reads no collection
        {"name": "rater", "token_sha256": hash_token("rater-token"), "tools": ["search_knowledge_base", "rate_answer"],
         "collections": ["candidate"]},
        {"name": "reader", "token_sha256": hash_token("reader-token"), "tools": ["search_knowledge_base"]},
        {"name": "other", "token_sha256": hash_token("other-token"), "tools": ["rate_answer"]},
        {"name": "asker", "token_sha256": hash_token("asker-token"), "tools": ["search_knowledge_base", "rate_answer"]},
    ]}))
    settings = indexed.model_copy(update={"mcp_permissions": permissions, "feedback_wait_s": 0.2})
    app = create_app(settings, service=AnswerService(settings, embedder=embedder))
    with live_server(app) as url:
        yield url + "/mcp", app, settings


async def _call(url, token, tool, arguments):
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        return await client.call_tool(tool, arguments)


def _text(result):
    return "\n".join(getattr(c, "text", "") for c in result.content)


@pytest.mark.anyio
async def test_mcp_clients_rate_their_own_requests_under_their_grant(mcp_app):
    from ragops.monitoring.events import request_event

    url, app, settings = mcp_app
    # a request answered for the MCP client `rater` (the identity MCP calls are routed and recorded under)
    app.state.events.record("request", **request_event("mcp-r1", "/v1/ask", "mcp:rater", 200, 9.0, question="q"))

    first = await _call(url, "rater-token", "rate_answer", {"request_id": "mcp-r1", "rating": "up"})
    assert not first.is_error, _text(first)
    second = await _call(url, "rater-token", "rate_answer",
                         {"request_id": "mcp-r1", "rating": "down", "reason": "wrong", "comment": "pin 123456789012"})
    assert not second.is_error and json.loads(_text(second))["replaced"] is True

    foreign = await _call(url, "other-token", "rate_answer", {"request_id": "mcp-r1", "rating": "up"})
    unknown = await _call(url, "rater-token", "rate_answer", {"request_id": "nope", "rating": "up"})
    denied = await _call(url, "reader-token", "rate_answer", {"request_id": "mcp-r1", "rating": "up"})
    invalid = await _call(url, "rater-token", "rate_answer", {"request_id": "mcp-r1", "rating": "meh"})
    assert foreign.is_error and unknown.is_error and _text(foreign) == _text(unknown)
    assert denied.is_error and "permission denied" in _text(denied)
    assert invalid.is_error

    [row] = votes(settings)
    assert (row.rating, row.reason, row.comment) == ("down", "wrong", "pin [number]")
    app.state.events.flush(10)
    registry = Registry(settings.registry_url)
    with registry.session() as s:
        logged = s.execute(select(McpAccessLog.client, McpAccessLog.decision, McpAccessLog.status)
                           .where(McpAccessLog.tool == "rate_answer").order_by(McpAccessLog.id)).all()
    registry.dispose()
    assert [tuple(r) for r in logged] == [("rater", "allowed", "ok"), ("rater", "allowed", "ok"),
                                          ("other", "allowed", "error"), ("rater", "allowed", "error"),
                                          ("reader", "denied", "denied"), ("rater", "allowed", "error")]


@pytest.mark.anyio
async def test_an_mcp_search_carries_the_request_id_its_client_rates(mcp_app):
    url, app, settings = mcp_app
    found = await _call(url, "asker-token", "search_knowledge_base", {"query": "mass delete guard", "k": 2})
    passages = [json.loads(c.text) for c in found.content]  # one text content per passage
    assert len(passages) == 2
    [request_id] = {p["request_id"] for p in passages}
    missing = await _call(url, "asker-token", "search_knowledge_base", {"query": "pizza dough hydration", "k": 2})
    [refused] = [json.loads(c.text) for c in missing.content]
    assert refused["fallback"] == "no_results" and refused["request_id"] != request_id

    up = await _call(url, "asker-token", "rate_answer", {"request_id": request_id, "rating": "up"})
    down = await _call(url, "asker-token", "rate_answer",
                       {"request_id": refused["request_id"], "rating": "down", "reason": "no_answer"})
    foreign = await _call(url, "other-token", "rate_answer", {"request_id": request_id, "rating": "down"})
    assert not up.is_error and not down.is_error, (_text(up), _text(down))
    assert foreign.is_error
    # the searches are request events like /v1/search's, under the client's identity, with what was asked
    asked = {e.request_id: e for e in events(settings, endpoint="/mcp/search_knowledge_base")}
    assert asked[request_id].question == "mass delete guard" and asked[request_id].similarity is not None
    assert asked[refused["request_id"]].fallback == "no_results" and asked[request_id].verified
    assert [(v.request_id, v.rating) for v in votes(settings)] == [(request_id, "up"), (refused["request_id"], "down")]


def test_a_vote_that_overtakes_its_event_waits_for_it(served, monkeypatch):
    """The event writer is held until the vote has looked once and found nothing; the vote then waits and succeeds."""
    import threading

    import ragops.feedback.votes as votes_module

    post = served(feedback_wait_s=30)
    writer = post.client.app.app.state.events
    held, looked = threading.Event(), []
    insert = writer._insert

    def held_insert(kind, rows):
        held.wait(30)
        return insert(kind, rows)

    owns = votes_module.owns_event

    def watched(*args):
        found = owns(*args)
        looked.append(found)
        held.set()  # the vote has seen the registry without its event: let the writer go on
        return found

    monkeypatch.setattr(writer, "_insert", held_insert)
    monkeypatch.setattr(votes_module, "owns_event", watched)
    rid = post("/v1/ask", {"question": "How are refresh guards applied?"}).json()["request_id"]
    voted = post("/v1/feedback", {"request_id": rid, "rating": "down", "reason": "incomplete"})
    assert voted.status_code == 200, voted.text
    assert looked[0] is False and looked[-1] is True
    assert [v.rating for v in votes(post.settings)] == ["down"]


@pytest.mark.anyio
async def test_mcp_votes_share_the_waiting_cap_of_post_feedback(mcp_app, monkeypatch):
    """With every waiting slot taken (by 32 votes over HTTP, say), a rate_answer on an id not stored yet is answered
    at once, as POST /v1/feedback answers it: it looks for its event once and does not wait."""
    import ragops.feedback.votes as votes_module

    url, app, settings = mcp_app
    slots = app.state.feedback_slots
    looked = []
    owns = votes_module.owns_event
    monkeypatch.setattr(votes_module, "owns_event", lambda *a: looked.append(1) or owns(*a))

    slots.taken = slots.cap  # every slot held by votes already waiting
    full = await _call(url, "rater-token", "rate_answer", {"request_id": "not-yet", "rating": "up"})
    assert full.is_error and len(looked) == 1
    slots.taken = 0
    looked.clear()
    free = await _call(url, "rater-token", "rate_answer", {"request_id": "not-yet", "rating": "up"})
    assert free.is_error and len(looked) > 1  # with a slot free it waited (feedback_wait_s), polling again
    assert slots.taken == 0  # the slot is given back
