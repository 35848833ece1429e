"""Candidate builds with a remote embedding model: the recorded model names the endpoint, dimensions are checked."""

import pytest
from sqlalchemy import select

from ragops.errors import EmbeddingModelError
from ragops.ingest.candidate import build_candidate
from ragops.registry import Registry
from ragops.registry.models import EmbeddingCacheEntry, IndexVersion


def test_a_candidate_records_the_remote_model_with_its_endpoint(tiny_remote_settings):
    build = build_candidate(tiny_remote_settings)
    name = f"tiny@openai+{tiny_remote_settings.embedding_endpoint}"
    assert build.embedding_model == name and build.n_chunks > 0
    with Registry(tiny_remote_settings.registry_url).session() as s:
        assert s.get(IndexVersion, build.index_version_id).embedding_model == name


def test_a_candidate_of_the_wrong_dimension_writes_nothing(tiny_remote_settings):
    cfg = tiny_remote_settings.model_copy(update={"embedding_dim": 384})
    with pytest.raises(EmbeddingModelError, match="but 384 dimensions are expected"):
        build_candidate(cfg)
    with Registry(cfg.registry_url).session() as s:
        assert s.scalars(select(IndexVersion)).all() == [] and s.scalars(select(EmbeddingCacheEntry)).all() == []
