"""The rerank hook: a release's answer config names a reranker, which reorders the top passages it is given."""

import pytest

from model_servers import ModelServer, tiny_cross_encoder

from ragops.errors import ConfigError


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory):
    """A tiny untrained cross-encoder: real files, meaningless scores."""
    return tiny_cross_encoder(tmp_path_factory.mktemp("ce"))


@pytest.mark.model
def test_a_configured_reranker_reorders_the_top_passages(indexed, embedder, cross_encoder):
    from ragops.answer.retrieval import Retriever

    retriever = Retriever(indexed, embedder=embedder)
    question = "How do I roll back a release?"
    plain = retriever.retrieve(question, 6).hits
    reranked = retriever.retrieve(question, 3, config={"rerank": str(cross_encoder), "rerank_depth": 6}).hits
    scores = [h.extra["rerank_score"] for h in reranked]
    assert len(reranked) == 3 and scores == sorted(scores, reverse=True)
    assert {h.chunk_id for h in reranked} <= {h.chunk_id for h in plain}
    from ragops.models.rerank import reranker_for

    everything = reranker_for(indexed, str(cross_encoder)).score(question, [h.text for h in plain])
    assert max(everything) == scores[0]  # the best of all six came first

    with pytest.raises(ConfigError, match="no trained model trained:reranker/9"):
        retriever.retrieve(question, 3, config={"rerank": "trained:reranker/9"})


@pytest.mark.model
def test_the_remote_reranker_of_the_settings_applies_when_the_release_names_none(indexed, embedder, cross_encoder):
    """RAGOPS_RERANKER_ENDPOINT: a real HTTP server speaking TEI's /rerank reorders the passages."""
    from sentence_transformers import CrossEncoder

    from ragops.answer.retrieval import Retriever

    server = ModelServer(reranker=CrossEncoder(str(cross_encoder), device="cpu", local_files_only=True))
    try:
        settings = indexed.model_copy(update={"reranker_endpoint": server.url})
        found = Retriever(settings, embedder=embedder).retrieve("How do I roll back a release?", 3).hits
        scores = [h.extra["rerank_score"] for h in found]
        assert scores == sorted(scores, reverse=True)
        assert [path for path, *_ in server.requests] == ["/rerank"]
    finally:
        server.close()


@pytest.mark.model
def test_a_reranker_endpoint_that_is_down_leaves_the_fused_order(indexed, embedder, caplog):
    """A remote reranker that fails costs the reordering, never the answer."""
    from ragops.answer.retrieval import Retriever

    server = ModelServer()
    server.mode = "error"
    try:
        settings = indexed.model_copy(update={"reranker_endpoint": server.url})
        question = "How do I roll back a release?"
        plain = Retriever(indexed, embedder=embedder).retrieve(question, 3).hits
        found = Retriever(settings, embedder=embedder).retrieve(question, 3).hits
        assert [h.chunk_id for h in found] == [h.chunk_id for h in plain]
        assert all("rerank_score" not in h.extra for h in found)
        assert "passages keep their fused order" in caplog.text
    finally:
        server.close()
