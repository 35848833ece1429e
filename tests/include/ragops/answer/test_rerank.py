"""The rerank hook: a release's answer config names a reranker, which reorders the top passages it is given."""

import itertools

import pytest

from support import tiny_sentence_model

from ragops.errors import ConfigError


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory):
    """An untrained cross-encoder on a tiny BERT: real files, meaningless scores."""
    from ragops.training import models
    from ragops.training.pairs import Pair

    folder = tmp_path_factory.mktemp("ce")
    ticks = itertools.count()
    pairs = [Pair("heading", "q", "p", ("n",), "s")] * 4
    models.train_reranker(str(tiny_sentence_model(folder / "base")), pairs, folder / "ce", batch_queries=2,
                          max_seconds=0.5, clock=lambda: next(ticks))
    return folder / "ce"


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
