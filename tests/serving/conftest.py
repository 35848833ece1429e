"""Peers for the serving tests: a fake OpenAI-compatible LLM, a live uvicorn server on a free loopback port."""

from __future__ import annotations

import pytest

from support import FakeLLM


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
