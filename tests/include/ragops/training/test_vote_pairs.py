"""Users' votes as training pairs: what is learned, and what is left out (evaluation questions, probes, anonymous
callers, ballot stuffing, cleared questions, gone chunks)."""

from datetime import datetime, timedelta, timezone

import pytest
from test_pairs import _corpus

from ragops.feedback.votes import store_vote
from ragops.monitoring.events import hash_user, request_event
from ragops.registry import Registry
from ragops.registry.models import RequestEvent
from ragops.training.votes import normal, vote_pairs

CHUNKS = _corpus()
INSTALL, ROUTE, PLUGINS = "install.md-0", "install.md-2", "plugins.md-0"


@pytest.fixture
def registry(tmp_path):
    return Registry(f"sqlite:///{tmp_path / 'r.sqlite'}")


def served(registry, request_id, user, question, chunk_ids, *, rating="up", reason=None, verified=True,
           synthetic=False, fallback=None, query=None):
    row = request_event(request_id, "/v1/ask", user, 200, 5.0, fallback=fallback, chunk_ids=chunk_ids,
                        verified=verified, synthetic=synthetic, question=question, query=query)
    with registry.session() as s:
        s.add(RequestEvent(**row))
        s.commit()
    store_vote(registry, request_id, hash_user(user), rating, reason)


def harvest(registry, asked=frozenset(), **kwargs):
    return vote_pairs(registry, CHUNKS, set(asked), datetime.now(timezone.utc) - timedelta(days=1), **kwargs)


def body(chunk_id):
    return next(c.body for c in CHUNKS if c.chunk_id == chunk_id)


def test_an_up_vote_teaches_its_question_against_the_first_chunk_and_a_wrong_vote_gives_negatives(registry):
    served(registry, "r1", "alice", "How do I install the operator?", [INSTALL, ROUTE])
    served(registry, "r2", "bob", "how do I install the Operator", [PLUGINS], rating="down", reason="wrong")
    served(registry, "r3", "carol", "How do I expose the hub outside the cluster?", [ROUTE], rating="down",
           reason="incomplete")
    found = harvest(registry)
    [pair] = found.pairs
    assert (pair.kind, pair.query, pair.positive) == ("vote", "How do I install the operator?", body(INSTALL))
    assert pair.negatives[0] == body(PLUGINS)  # what users said was wrong for this question comes first
    assert len(pair.negatives) == 3 and body(INSTALL) not in pair.negatives
    assert found.to_dict() == {"votes": 3, "pairs": 1, "skipped": {"down_not_wrong": 1}}


def test_questions_an_evaluation_asks_are_never_trained_on(registry):
    served(registry, "r1", "alice", "How do I install the operator?", [INSTALL])
    asked = {normal("  HOW do I install the operator ")}  # case, punctuation and spacing aside
    found = harvest(registry, asked)
    assert found.pairs == [] and found.skipped == {"evaluation_question": 1}


def test_probes_anonymous_callers_refusals_and_cleared_questions_teach_nothing(registry):
    served(registry, "r1", "probe", "How do I install the operator?", [INSTALL], synthetic=True)
    served(registry, "r2", "anon", "How do I enable a dynamic plugin?", [PLUGINS], verified=False)
    served(registry, "r3", "alice", "How do I remove a plugin?", [], fallback="no_results")
    served(registry, "r4", "bob", None, [ROUTE])  # retention cleared the question's text
    served(registry, "r5", "carol", "How do I route traffic?", ["gone.md-0"])  # a chunk the index no longer holds
    found = harvest(registry)
    assert found.pairs == []
    assert found.skipped == {"probe": 1, "unverified": 1, "not_answered": 1, "question_cleared": 1,
                             "chunks_gone": 1}
    assert [p.query for p in harvest(registry, verified_only=False).pairs] == ["How do I enable a dynamic plugin?"]


def test_one_caller_cannot_stuff_the_ballot(registry):
    for i in range(5):
        served(registry, f"r{i}", "mallory", f"How do I install the operator, take {i}?", [INSTALL])
    served(registry, "r9", "alice", "How do I enable a dynamic plugin?", [PLUGINS])
    found = harvest(registry, per_user=2)
    assert len(found.pairs) == 3 and found.skipped == {"caller_cap": 3}
    assert "How do I enable a dynamic plugin?" in {p.query for p in found.pairs}


def test_one_caller_cannot_choose_the_negatives_of_every_question_either(registry):
    served(registry, "r1", "alice", "How do I install the operator?", [INSTALL])
    served(registry, "r2", "mallory", "How do I install the operator?", [PLUGINS], rating="down", reason="wrong")
    served(registry, "r3", "mallory", "How do I install the operator?", [ROUTE], rating="down", reason="wrong")
    found = harvest(registry, per_user=1)
    [pair] = found.pairs
    assert pair.negatives[0] == body(PLUGINS) and body(ROUTE) not in pair.negatives[:1]
    assert found.skipped == {"caller_cap": 1}


def test_a_condensed_follow_up_is_read_by_its_query(registry):
    served(registry, "r1", "alice", "and how do I turn it on?", [PLUGINS], query="dynamic plugins: how do I turn it on")
    [pair] = harvest(registry).pairs
    assert pair.query == "dynamic plugins: how do I turn it on" and pair.positive == body(PLUGINS)


def test_a_vote_outside_the_window_is_not_read(registry):
    served(registry, "r1", "alice", "How do I install the operator?", [INSTALL])
    later = vote_pairs(registry, CHUNKS, set(), datetime.now(timezone.utc) + timedelta(hours=1))
    assert later.votes == 0 and later.pairs == []


def test_questions_in_other_scripts_are_told_apart():
    assert normal("Как установить оператор?") == "как установить оператор"
    assert normal("Ｃafé  PLUGINS!") == normal("café plugins")  # width and composed forms aside
    assert normal("如何安装?") != normal("如何删除?")


def test_questions_without_latin_letters_are_each_their_own_pair(registry):
    served(registry, "r1", "alice", "Как установить оператор?", [INSTALL])
    served(registry, "r2", "bob", "如何启用动态插件?", [PLUGINS])
    found = harvest(registry)
    assert [p.query for p in found.pairs] == ["Как установить оператор?", "如何启用动态插件?"]
    assert found.skipped == {}


def test_a_follow_up_that_asks_an_evaluation_question_is_not_trained_on(registry):
    # the rule condenser appends the earlier turns' words: the query differs, the question the user typed does not
    served(registry, "r1", "alice", "How do I install it?", [INSTALL], query="How do I install it? (operator)")
    found = harvest(registry, {normal("How do I install it?")})
    assert found.pairs == [] and found.skipped == {"evaluation_question": 1}


def test_a_vote_on_a_held_out_section_is_not_trained_on(registry):
    served(registry, "r1", "alice", "How do I install the operator?", [INSTALL])
    served(registry, "r2", "bob", "How do I enable a dynamic plugin?", [PLUGINS])
    held = {"|".join(next(c for c in CHUNKS if c.chunk_id == INSTALL).section)}
    found = harvest(registry, held_out=held)
    assert [p.query for p in found.pairs] == ["How do I enable a dynamic plugin?"]
    assert found.skipped == {"held_out_section": 1}


def test_a_vote_without_negatives_to_learn_against_is_counted(registry):
    served(registry, "r1", "alice", "How do I install the operator?", [INSTALL])
    section = next(c for c in CHUNKS if c.chunk_id == INSTALL).section
    alone = [c for c in CHUNKS if c.section == section]  # a corpus of one section: nothing to rank below the answer
    found = vote_pairs(registry, alone, set(), datetime.now(timezone.utc) - timedelta(days=1))
    assert found.to_dict() == {"votes": 1, "pairs": 0, "skipped": {"no_negatives": 1}}


def test_a_retried_request_id_is_read_by_the_answer_voted_on_last(registry):
    # a client reused its request id (X-Request-ID): the vote, cast after both, is on the answer shown last
    for question, chunk in (("How do I install the operator?", INSTALL), ("How do I enable a dynamic plugin?", PLUGINS)):
        row = request_event("r1", "/v1/ask", "alice", 200, 5.0, chunk_ids=[chunk], verified=True, question=question)
        with registry.session() as s:
            s.add(RequestEvent(**row))
            s.commit()
    store_vote(registry, "r1", hash_user("alice"), "up")
    found = harvest(registry)
    assert [(p.query, p.positive) for p in found.pairs] == [("How do I enable a dynamic plugin?", body(PLUGINS))]
    assert found.votes == 1
