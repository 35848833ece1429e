"""Training within its time budget, artefacts a reranker can load, and the release path that judges them."""

import itertools
import json

import pytest

from model_servers import tiny_sentence_transformer
from test_pairs import _corpus

from ragops.training import models
from ragops.training.pairs import build_pairs


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_sentence_transformer(tmp_path_factory.mktemp("tiny"))


def _ticks(step: float):
    counter = itertools.count()
    return lambda: next(counter) * step


def test_reranker_trains_saves_and_loads_as_a_cross_encoder(tiny, tmp_path):
    from ragops.models.rerank import CrossEncoderReranker

    pairs = build_pairs(_corpus(), negatives=2)
    stats = models.train_reranker(str(tiny), pairs, tmp_path / "out", batch_queries=2, epochs=2, max_length=64)
    assert stats.stopped_by == "data" and stats.steps == 2 * (len(pairs) // 2)
    assert stats.loss_first == stats.loss_first  # a number, not NaN
    scores = CrossEncoderReranker("t", str(tmp_path / "out"), max_length=64).score("operator", ["a", "b", "c"])
    assert len(scores) == 3 and all(isinstance(s, float) for s in scores)


def test_training_stops_at_its_time_budget_whatever_the_data(tiny, tmp_path):
    pairs = build_pairs(_corpus(), negatives=2) * 20
    stats = models.train_embedder(str(tiny), pairs, tmp_path / "out", batch_size=4, max_seconds=25,
                                  clock=_ticks(10.0))  # every reading of this clock moves it 10 "seconds"
    assert stats.stopped_by == "time" and 1 <= stats.steps <= 3 < len(pairs) // 4
    assert (tmp_path / "out" / "modules.json").exists()  # what was trained so far is saved


def test_held_out_ranking_rewards_a_scorer_that_puts_the_positive_first():
    pairs = build_pairs(_corpus(), negatives=2)
    perfect = models.held_out_ranking(pairs, lambda q, texts: [1.0] + [0.0] * (len(texts) - 1))
    worst = models.held_out_ranking(pairs, lambda q, texts: [0.0] + [1.0] * (len(texts) - 1))
    assert perfect["mrr"] == 1.0 and perfect["accuracy_at_1"] == 1.0
    assert worst["mrr"] < 0.5 and worst["accuracy_at_1"] == 0.0


@pytest.mark.model
def test_train_models_publishes_artefacts_and_propose_judges_them_by_evaluation(indexed, tiny, monkeypatch):
    """The release path: a useless (random) model is evaluated against stable and not registered."""
    from sqlalchemy import select

    from ragops.errors import ConfigError
    from ragops.feedback.votes import store_vote
    from ragops.monitoring.events import hash_user, request_event
    from ragops.registry import Registry
    from ragops.registry.models import Release, RequestEvent
    from ragops.rollout.retrain import propose
    from ragops.training.run import corpus_chunks, list_models, train_models
    from ragops.training.votes import normal

    monkeypatch.setattr("ragops.training.run.HELD_OUT_LIMIT", 10)
    with pytest.raises(ConfigError, match="evaluation sets' questions"):  # votes without the questions to leave out
        train_models(indexed, base_model=str(tiny), max_seconds=30)
    [chunk, *_] = corpus_chunks(indexed)[0]
    registry = Registry(indexed.registry_url)
    for request_id, question in (("r1", "Which port does the service use?"), ("r2", "What does a refresh do?")):
        with registry.session() as s:
            s.add(RequestEvent(**request_event(request_id, "/v1/ask", "alice", 200, 5.0, chunk_ids=[chunk.chunk_id],
                                               verified=True, question=question)))
            s.commit()
        store_vote(registry, request_id, hash_user("alice"), "up")
    result = train_models(indexed, base_model=str(tiny), max_seconds=30,
                          evaluation_questions={normal("What does a refresh do?")})
    refs = [m["ref"] for m in result["models"].values()]
    assert refs == ["trained:reranker/1", "trained:embedder/1"]
    manifest = json.loads((indexed.home / "models" / "reranker" / "1" / "manifest.json").read_text())
    assert manifest["data_hash"] == result["data_hash"] and manifest["index_version"] == result["index_version"]
    assert manifest["pairs"]["train"]["vote"] == 1 and manifest["votes"]["skipped"] == {"evaluation_question": 1}
    assert 1 <= manifest["held_out"]["before_cosine"]["pairs"] <= 10 and set(manifest["pairs"]) == {"train", "held_out"}
    assert [m["ref"] for m in list_models(indexed)] == refs

    sent = []

    class Outbox:
        def send(self, message):
            sent.append(message.text)

    # A random reranker shuffles the top passages: the evaluation gate (hit rate first, at full alpha) rejects it.
    [outcome] = propose(indexed, refs[:1], actor="test", notifier=Outbox())
    assert outcome["ref"] == "trained:reranker/1" and "worse than the stable release" in outcome["rejected"], outcome
    with Registry(indexed.registry_url).session() as s:
        assert [r.name for r in s.scalars(select(Release))] == ["live"]
    assert any("trained:reranker/1 not registered" in t for t in sent)

    def as_good(settings, index_version_id, name, **kwargs):  # the path of a model that evaluates no worse
        return {"stable": {"metrics": {"hit_rate": 0.9}}, "candidate": {"metrics": {"hit_rate": 0.9}}}

    monkeypatch.setattr("ragops.rollout.retrain.evaluate_candidate", as_good)
    [registered] = propose(indexed, ["trained:reranker/1"], actor="test", notifier=Outbox())
    assert registered["release"] == "rerank-1-on-v1"
    with Registry(indexed.registry_url).session() as s:
        config = s.scalars(select(Release.answer_config).where(Release.name == "rerank-1-on-v1")).one()
    assert config["rerank"] == "trained:reranker/1"
    assert any("registered as candidate release rerank-1-on-v1" in t for t in sent)
