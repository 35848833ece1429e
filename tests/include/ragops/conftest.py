"""Fixtures for the library's tests that refresh without loading the embedding model: a tiny sentence-transformer
served over the OpenAI embeddings protocol by a real HTTP server on 127.0.0.1 (tests/model_servers.py)."""

import pytest


@pytest.fixture(scope="session")
def tiny_server_model(tmp_path_factory):
    from sentence_transformers import SentenceTransformer

    from model_servers import tiny_sentence_transformer

    return SentenceTransformer(str(tiny_sentence_transformer(tmp_path_factory.mktemp("tiny"))), device="cpu")


@pytest.fixture
def tiny_remote_settings(settings, corpus, tiny_server_model):
    """The test's settings, embedding through the tiny model's server: a refresh in well under a second."""
    from model_servers import ModelServer

    server = ModelServer(tiny_server_model)
    yield settings.model_copy(update={"embedding_endpoint": server.url, "embedding_model": "tiny"})
    server.close()
