"""The HTTP contract: answers with citations, validated input, health, readiness, metrics, OpenAPI."""

import pytest

from support import events


def test_ask_answers_with_citations_and_is_labelled_extractive(make_client, indexed):
    client = make_client()
    reply = client.post("/v1/ask", json={"question": "What happens to documents that fail validation?", "user_id": "ann"})
    assert reply.status_code == 200
    body = reply.json()
    assert body["answer"].startswith("Extractive answer") and "quarantined" in body["answer"]
    assert body["fallback"] is None and body["variant"] == "stable" and body["release"] == "live"
    assert body["citations"][0]["doc_uri"].endswith("refresh.md")
    assert reply.headers["X-Request-ID"] == body["request_id"]
    client.app.state.events.flush()
    [event] = events(indexed, endpoint="/v1/ask")
    assert event.status == 200 and event.fallback is None and event.chunk_ids and event.user_hash != "ann"


def test_search_returns_ranked_passages(make_client):
    body = make_client().post("/v1/search", json={"question": "Slack outbox token", "k": 2}).json()
    assert len(body["results"]) == 2 and body["results"][0]["doc_uri"].endswith("notes.txt")
    assert set(body["results"][0]) == {"chunk_id", "doc_uri", "score", "text"}


@pytest.mark.parametrize("payload", [
    {"question": ""}, {"question": "x" * 2001}, {"question": "ok", "k": 0}, {"question": "ok", "k": 21},
    {"question": 5}, {"question": "ok", "unexpected": True}, {}, [],
])
def test_bad_input_gets_a_clear_422(make_client, indexed, payload):
    client = make_client()
    reply = client.post("/v1/ask", json=payload)
    assert reply.status_code == 422
    assert reply.json()["error"]["code"] == "invalid_request" and reply.json()["error"]["message"]
    client.app.state.events.flush()
    assert events(indexed, status=422)


def test_malformed_json_is_a_422_not_a_500(make_client):
    reply = make_client().post("/v1/search", content=b"{not json", headers={"content-type": "application/json"})
    assert reply.status_code == 422 and reply.json()["error"]["code"] == "invalid_request"


def test_health_readiness_and_metrics(make_client):
    client = make_client()
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"ready": True, "not_ready": [], "degraded": []}
    client.post("/v1/search", json={"question": "guards"})
    text = client.get("/metrics").text
    assert 'ragops_requests_total{endpoint="/v1/search",status="200"} 1.0' in text
    assert 'ragops_request_latency_seconds_bucket{endpoint="/v1/search"' in text
    assert 'ragops_fallbacks_total{code="store_unavailable"} 0.0' in text


def test_readiness_names_what_is_missing(make_client, settings):
    client = make_client(settings.model_copy(update={"home": settings.home.parent / "empty-home"}))
    reply = client.get("/readyz")
    assert reply.status_code == 503 and reply.json()["not_ready"] == ["index"]


def test_openapi_documents_the_api(make_client):
    spec = make_client().get("/openapi.json").json()
    assert {"/v1/ask", "/v1/search", "/healthz", "/readyz", "/metrics"} <= set(spec["paths"])
    schema = spec["components"]["schemas"]["Query"]["properties"]
    assert schema["question"]["maxLength"] == 2000 and schema["k"]["anyOf"][0]["maximum"] == 20


def test_docs_work_offline(make_client):
    """/docs and /redoc load Swagger UI and ReDoc from the app itself: no page references another host."""
    import re

    client = make_client()
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assets = re.findall(r'(?:src|href)=["\']?([^"\'\s>]+)', html) + re.findall(r"url: ?['\"]([^'\"]+)", html)
        assert assets, page
        external = [a for a in assets if re.match(r"(https?:)?//", a)]
        assert external == [], f"{page} loads {external}"
        for asset in assets:
            assert client.get(asset).status_code == 200, asset
