"""Peers for the serving tests: a fake OpenAI-compatible LLM, a live uvicorn server on a free loopback port."""

from __future__ import annotations

import pytest

from support import FakeLLM, Peer


@pytest.fixture
def fake_llm():
    llm = FakeLLM()
    yield llm
    llm.close()


@pytest.fixture
def make_client(request, embedder):
    """Build a TestClient over create_app with the test's settings, by default `indexed` (asked for only then, so a
    test that indexes its own corpus gets no second home); every client is closed afterwards."""
    from fastapi.testclient import TestClient

    from ragops.answer.pipeline import AnswerService
    from serving.app import create_app

    clients = []

    def make(settings=None, *, chat_model=None, tools=None, limiter=None):
        settings = settings or request.getfixturevalue("indexed")
        service = AnswerService(settings, embedder=embedder, chat_model=chat_model, tools=tools)
        client = TestClient(create_app(settings, service=service, tools=tools, limiter=limiter))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


OPEN = {"rate_limit": "1000/minute", "rate_limit_address": "1000/minute", "rate_limit_global": "1000/minute"}


@pytest.fixture
def served(indexed, embedder, tmp_path):
    """An app behind Peer (X-Test-Peer sets the client address) with two API keys;
    `post(path, body, peer, key, headers)`."""
    from fastapi.testclient import TestClient

    from ragops.answer.pipeline import AnswerService
    from ragops.audit.apikeys import issue
    from serving.app import create_app

    keys = tmp_path / "keys.yaml"
    secrets = {name: issue(keys, name)[0] for name in ("desk", "other")}
    clients = []

    def make(**overrides):
        cfg = indexed.model_copy(update=OPEN | {"api_keys": keys} | overrides)
        client = TestClient(Peer(create_app(cfg, service=AnswerService(cfg, embedder=embedder))))
        client.__enter__()
        clients.append(client)

        def post(path, body, peer="203.0.113.7", key=None, headers=None):
            sent = {"X-Test-Peer": peer} | ({"Authorization": f"Bearer {secrets[key]}"} if key else {})
            return client.post(path, json=body, headers=sent | (headers or {}))

        post.client, post.settings = client, cfg
        return post

    yield make
    for client in clients:
        client.__exit__(None, None, None)
