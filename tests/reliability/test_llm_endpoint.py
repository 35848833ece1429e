"""Fault matrix, LLM endpoint (an OpenAI-compatible fake): down, hanging, 500, malformed. Outcome: 503
llm_unavailable with a maintenance message within the deadline, the event stored, and /readyz still ready."""

import pytest
from fastapi.testclient import TestClient

from support import FakeLLM, events

Q = {"question": "What blocks a mass delete?"}


@pytest.fixture
def fake_llm():
    llm = FakeLLM()
    yield llm
    llm.close()


def _ask(cfg, embedder, fake):
    from ragops.answer.llm import CircuitBreaker, OpenAIChatModel
    from ragops.answer.pipeline import AnswerService
    from serving.app import create_app

    model = OpenAIChatModel(fake.base_url, "test-model", timeout_s=30, max_retries=2, deadline_s=1.0,
                            breaker=CircuitBreaker(threshold=50))
    cfg = cfg.model_copy(update={"llm_base_url": fake.base_url})
    with TestClient(create_app(cfg, service=AnswerService(cfg, embedder=embedder, chat_model=model))) as client:
        reply = client.post("/v1/ask", json=Q)
        search = client.post("/v1/search", json=Q)
        ready = client.get("/readyz")
        assert client.app.state.events.flush(timeout_s=60)
    body = reply.json()
    assert reply.status_code == 503 and body["fallback"] == "llm_unavailable" and "maintenance" in body["answer"]
    assert search.status_code == 200 and ready.status_code == 200 and ready.json()["ready"]
    assert [(e.endpoint, e.status, e.fallback) for e in events(cfg)] == [("/v1/ask", 503, "llm_unavailable"),
                                                                         ("/v1/search", 200, None)]
    return ready.json()


@pytest.mark.fault("LLM endpoint", "down (connection refused)")
def test_llm_down(indexed, embedder, fake_llm, matrix):
    fake_llm.close()
    ready = _ask(indexed, embedder, fake_llm)
    assert ready["degraded"] == ["llm"]
    matrix.record("503 llm_unavailable with a maintenance message; search still 200; /readyz 200 with llm degraded; "
                  "events stored")


@pytest.mark.fault("LLM endpoint", "slow past its timeout (hangs)")
def test_llm_hangs(indexed, embedder, fake_llm, matrix):
    fake_llm.mode = "hang"  # released only when the fixture closes it, after the assertions
    _ask(indexed, embedder, fake_llm)
    assert fake_llm.calls == 1 and not fake_llm.released.is_set()
    matrix.record("503 llm_unavailable at the deadline (1 s here, 15 s by default, retries included) while the model "
                  "still hangs; search and readiness unaffected; events stored")


@pytest.mark.fault("LLM endpoint", "error status (HTTP 500)")
def test_llm_error_status(indexed, embedder, fake_llm, matrix):
    fake_llm.mode = "error"
    _ask(indexed, embedder, fake_llm)
    matrix.record("503 llm_unavailable after the SDK's bounded retries; events stored")


@pytest.mark.fault("LLM endpoint", "malformed reply")
def test_llm_malformed(indexed, embedder, fake_llm, matrix):
    fake_llm.mode = "malformed"
    _ask(indexed, embedder, fake_llm)
    matrix.record("503 llm_unavailable, never a broken answer; events stored")


@pytest.mark.fault("LLM endpoint", "malformed reply (an empty answer)")
def test_llm_empty(indexed, embedder, fake_llm, matrix):
    fake_llm.mode = "empty"
    _ask(indexed, embedder, fake_llm)
    matrix.record("503 llm_unavailable; events stored")
