"""The abstention evidence: distinctive terms weigh by IDF, typos map onto the corpus, LLM declines are recognised."""

import pytest

from ragops.answer.abstention import AbstentionPolicy, Vocabulary, evidence, is_decline, terms
from ragops.index import SearchHit

CORPUS = ["Configure the catalog to import repositories from GitHub.",
          "The catalog lists components, systems and their owners.",
          "Enable the audit log to record catalog changes.",
          "Install the Operator on the cluster and enable the plugin.",
          "Helm chart values configure the plugin and the catalog."]


def _passages(*texts):
    return [SearchHit(f"c{i}", "d", 1.0, t) for i, t in enumerate(texts)]


def test_an_unknown_distinctive_term_outweighs_common_matches():
    vocab = Vocabulary(CORPUS)
    policy = AbstentionPolicy()
    passages = _passages(CORPUS[3], CORPUS[0])
    near = evidence("How do I enable FIPS mode on the cluster?", passages, 0.4, vocab, policy)
    answerable = evidence("How do I enable the plugin on the cluster?", passages, 0.4, vocab, policy)
    assert near.missing[0] == "fips" and near.coverage < 0.5 < answerable.coverage
    assert answerable.missing == ()


def test_a_typo_maps_onto_the_corpus_word_and_counts_as_found():
    vocab = Vocabulary(CORPUS)
    found = evidence("how do i import repositries into the catalog", _passages(CORPUS[0]), 0.5, vocab,
                     AbstentionPolicy())
    assert found.coverage == 1.0 and found.missing == ()


def test_terms_found_only_outside_the_top_passages_do_not_count():
    vocab = Vocabulary(CORPUS)
    found = evidence("audit log retention", _passages(CORPUS[1]), 0.3, vocab, AbstentionPolicy(top_passages=1))
    assert "audit" in found.missing and found.coverage < 0.5


def test_decision_combines_coverage_and_similarity():
    vocab = Vocabulary(CORPUS)
    e = evidence("enable the plugin", _passages(CORPUS[3]), 0.2, vocab, AbstentionPolicy())
    assert e.answerable(AbstentionPolicy(sim_weight=1.0, threshold=1.1))
    assert not e.answerable(AbstentionPolicy(sim_weight=1.0, threshold=1.3))
    assert AbstentionPolicy.from_config({"abstain_threshold": 0.7, "k": 5}).threshold == 0.7


def test_question_words_are_not_evidence():
    assert terms("What is the way to do it, please?") == []


@pytest.mark.parametrize("reply, declined", [
    ("No matching information was found in the passages.", True),
    ("The provided context does not contain information about FIPS.", True),
    ("I don't know based on these sources.", True),
    ("Enable the plugin in the Helm values [1].", False),
    ("Set `catalog.rules` as shown [2]; the context does not contain a default for it beyond that example, "
     "so keep the rule list explicit and review it after every upgrade of the chart, which the upgrade guide "
     "describes step by step for both the Operator and the Helm installation paths in detail.", False),
])
def test_llm_declines_are_recognised(reply, declined):
    assert is_decline(reply) is declined


def test_an_unknown_everyday_word_is_no_evidence_but_an_unknown_name_is(embedder):
    vocab = Vocabulary(CORPUS, embedder.is_common_word)
    policy = AbstentionPolicy(common_weight=0.0)
    chatty = evidence("I am trying to import repositories into the catalog", _passages(CORPUS[0]), 0.5, vocab, policy)
    named = evidence("import repositories into the catalog with webauthn", _passages(CORPUS[0]), 0.5, vocab, policy)
    assert embedder.is_common_word("trying") and not embedder.is_common_word("webauthn")
    assert chatty.coverage == 1.0 and named.coverage < 0.6 and named.missing == ("webauthn",)
