"""Candidate builds with a remote embedding model: the recorded model names the endpoint, dimensions are checked."""

import pytest
from sqlalchemy import select

from ragops.errors import EmbeddingModelError
from ragops.ingest.candidate import build_candidate
from ragops.registry import Registry
from ragops.registry.models import EmbeddingCacheEntry, IndexVersion


@pytest.fixture(scope="module")
def tiny_server_model(tmp_path_factory):
    from sentence_transformers import SentenceTransformer

    from model_servers import tiny_sentence_transformer

    return SentenceTransformer(str(tiny_sentence_transformer(tmp_path_factory.mktemp("tiny"))), device="cpu")


@pytest.fixture
def remote_settings(settings, corpus, tiny_server_model):
    from model_servers import ModelServer

    server = ModelServer(tiny_server_model)
    yield settings.model_copy(update={"embedding_endpoint": server.url, "embedding_model": "tiny"})
    server.close()


def test_a_candidate_records_the_remote_model_with_its_endpoint(remote_settings):
    build = build_candidate(remote_settings)
    name = f"tiny@openai+{remote_settings.embedding_endpoint}"
    assert build.embedding_model == name and build.n_chunks > 0
    with Registry(remote_settings.registry_url).session() as s:
        assert s.get(IndexVersion, build.index_version_id).embedding_model == name


def test_a_candidate_of_the_wrong_dimension_writes_nothing(remote_settings):
    cfg = remote_settings.model_copy(update={"embedding_dim": 384})
    with pytest.raises(EmbeddingModelError, match="but 384 dimensions are expected"):
        build_candidate(cfg)
    with Registry(cfg.registry_url).session() as s:
        assert s.scalars(select(IndexVersion)).all() == [] and s.scalars(select(EmbeddingCacheEntry)).all() == []
