"""Bounded work per request (finding 10) and readiness that means "search can be served" (findings 6 and 9)."""

import socket

from support import events, live_server


def test_a_body_over_the_limit_is_refused_with_413_json(make_client, indexed):
    client = make_client(indexed.model_copy(update={"max_body_bytes": 1024}))
    big = b'{"question": "' + b"a" * 2000 + b'"}'
    declared = client.post("/v1/ask", content=big, headers={"content-type": "application/json", "X-Request-ID": "big-1"})
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "payload_too_large"
    assert declared.headers["X-Request-ID"] == "big-1"
    chunked = client.post("/v1/search", content=iter([big[:600], big[600:]]), headers={"content-type": "application/json"})
    assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "payload_too_large"
    mcp = client.post("/mcp", content=big, headers={"content-type": "application/json"})
    assert mcp.status_code == 413
    assert client.post("/v1/search", json={"question": "guards"}).status_code == 200  # within the limit: served
    client.app.state.events.flush()
    assert [e.request_id for e in events(indexed, status=413)][0] == "big-1" and len(events(indexed, status=413)) == 2


def test_the_limit_answers_before_the_body_is_read(indexed, embedder):
    """A client declares 200 MB and sends a few bytes: the 413 comes at once, nothing waits for (or buffers) the rest."""
    from ragops.answer.pipeline import AnswerService
    from serving.app import create_app

    app = create_app(indexed, service=AnswerService(indexed, embedder=embedder))
    with live_server(app) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(b"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 200000000\r\n\r\n{\"question\": \"")
            head = sock.recv(65536).decode("latin-1")
    assert head.startswith("HTTP/1.1 413") and "payload_too_large" in head


def test_llm_down_degrades_readiness_without_taking_search_out(make_client, indexed, fake_llm):
    url = fake_llm.base_url
    fake_llm.close()
    client = make_client(indexed.model_copy(update={"llm_base_url": url}))
    reply = client.get("/readyz")
    assert reply.status_code == 200 and reply.json()["ready"] is True
    assert reply.json() == {"ready": True, "not_ready": [], "degraded": ["llm"]}


def test_a_truncated_index_data_file_is_not_ready(make_client, indexed, caplog):
    """Finding 6: with a data file cut in half, search answers 503 and /readyz must not say ready.

    Issue 21: /readyz is unauthenticated, and said so with the data file's path and a Rust source location; it gives
    reason codes only, and the detail goes to the log."""
    data = next((indexed.lance_dir / "chunks.lance" / "data").glob("*.lance"))
    with open(data, "r+b") as f:
        f.truncate(data.stat().st_size // 2)
    client = make_client()
    reply = client.get("/readyz")
    assert reply.status_code == 503 and reply.json() == {"ready": False, "not_ready": ["index"], "degraded": []}
    assert "readiness: index not ready: " in caplog.text and "LanceError" in caplog.text  # with the Rust location
    assert client.post("/v1/search", json={"question": "guards"}).status_code == 503
