"""Context packing: the answering sentences within a budget, in document order, with their citations."""

import numpy as np
import pytest

from ragops.answer.extractive import extractive_answer
from ragops.answer.packing import MAX_UNIT_CHARS, OMISSION, EmbeddingScorer, pack, split
from ragops.index import SearchHit

HEADING = "Guide > Audit logs"
BODY = ("Audit logs record who did what. They are written as JSON lines. You can forward them to Splunk. "
        "Forwarding needs a token. The token lives in a secret.\n\n"
        "1. Configure the inputs. Use the application type.\n"
        "2. Configure the outputs.\n\n"
        "Retention is thirty days by default. Older records are deleted.")


def hit(text=BODY, heading=HEADING, chunk_id="c1", doc="docs/audit.md", score=1.0, chunk_ids=("c1", "c2")):
    full = f"{heading}\n\n{text}" if heading else text
    return SearchHit(chunk_id, doc, score, full, heading, "Audit", 0.5, {"chunk_ids": list(chunk_ids)})


def prefer(*words):
    """A deterministic reader: a unit scores by how many of `words` it contains."""
    calls = []

    def scorer(query, texts):
        calls.append(len(texts))
        return [float(sum(w.lower() in t.lower() for w in words)) for t in texts]

    scorer.calls = calls
    return scorer


def total(hits):
    return sum(len(h.text) for h in hits)


@pytest.mark.parametrize("budget", [1, 10, 25, 60, 100, 150, 250, 400, 4000])
def test_the_budget_is_never_exceeded(budget):
    hits = [hit(), hit(BODY.replace("Audit", "Access"), chunk_id="c3", chunk_ids=("c3",)),
            hit("x" * 5000, heading="", chunk_id="c4", chunk_ids=("c4",))]
    packed = pack("splunk token", hits, prefer("splunk", "token"), budget)
    assert total(packed) <= budget
    assert all(h.text.strip() and h.text.strip() != HEADING for h in packed)  # never an empty passage


def test_a_large_budget_keeps_the_whole_passage_in_its_reading_order():
    (packed,) = pack("anything", [hit()], prefer("retention"), 4000)
    assert packed.text == hit().text


def test_chosen_units_keep_document_order_and_omissions_are_marked():
    (packed,) = pack("retention splunk", [hit()], prefer("retention", "splunk"), 150, neighbours=0)
    assert packed.text.index("Splunk") < packed.text.index("Retention")
    assert OMISSION in packed.text
    assert "Use the application type" not in packed.text


def test_a_chosen_unit_brings_its_neighbours():
    (alone,) = pack("q", [hit()], prefer("forward them"), 70, neighbours=0)
    assert "You can forward them to Splunk." in alone.text and "JSON" not in alone.text
    (near,) = pack("q", [hit()], prefer("forward them"), 125, neighbours=1)
    assert "They are written as JSON lines. You can forward them to Splunk. Forwarding needs a token." in near.text
    assert "Audit logs record" not in near.text


def test_the_heading_is_kept_once_and_never_scored():
    scorer = prefer("splunk", "retention", "audit")
    (packed,) = pack("q", [hit()], scorer, 200, neighbours=0)
    assert packed.text.startswith(HEADING + "\n\n")
    assert packed.text.count(HEADING) == 1
    assert HEADING not in [u.text for u in split(hit()).units]


def test_a_list_item_keeps_its_marker():
    (packed,) = pack("q", [hit()], prefer("outputs"), 60, neighbours=0)
    assert "2. Configure the outputs." in packed.text


def test_a_short_code_block_is_one_unit():
    text = "Apply it:\n\n```bash\noc apply -f forwarder.yaml\noc get pods\n```\n\nThen wait."
    units = split(hit(text)).units
    assert "```bash\noc apply -f forwarder.yaml\noc get pods\n```" in [u.text for u in units]
    for budget in range(20, 120, 7):
        for packed in pack("q", [hit(text)], prefer("oc get"), budget):
            assert packed.text.count("```") % 2 == 0


def test_a_long_code_block_is_packed_by_lines_inside_its_fences():
    lines = [f"  key{i}: value{i}  # setting number {i} of the forwarder" for i in range(30)]
    text = "The forwarder:\n\n```yaml\n" + "\n".join(lines) + "\n```\n\nThat is all."
    assert len(text) > MAX_UNIT_CHARS
    for budget in (100, 150, 300):
        (packed,) = pack("q", [hit(text)], prefer("key17:"), budget)
        assert total([packed]) <= budget
        assert "key17: value17" in packed.text
        assert packed.text.count("```yaml") == 1 and packed.text.count("```") == 2
        assert packed.text.index("```yaml") < packed.text.index("key17") < packed.text.rindex("```")


def test_an_unclosed_code_block_is_not_closed_by_packing():
    text = "The forwarder:\n\n```yaml\n" + "\n".join(f"key{i}: {'v' * 40}" for i in range(20))
    (packed,) = pack("q", [hit(text)], prefer("key5:"), 200)
    assert packed.text.count("```") == 1 and "key5:" in packed.text


def test_table_rows_are_packed_under_their_header():
    rows = "\n".join(f"| option{i} | what option {i} does, at some length |" for i in range(20))
    text = "Options:\n\n| name | what |\n|---|---|\n" + rows
    (packed,) = pack("q", [hit(text)], prefer("option12 "), 150, neighbours=0)
    assert "| name | what |\n|---|---|\n| option12 " in packed.text


def test_citations_are_preserved():
    first = hit(chunk_id="a", doc="docs/a.md", chunk_ids=("a", "a2"))
    second = hit(BODY.upper(), chunk_id="b", doc="docs/b.md", chunk_ids=("b",))
    packed = pack("q", [first, second], lambda q, texts: [float(t.isupper()) for t in texts], 300)
    assert packed[0].chunk_id == "b"  # passages come in the order of their best unit
    for p in packed:
        original = first if p.chunk_id == "a" else second
        assert (p.doc_uri, p.title, p.heading, p.similarity, p.score) == \
            (original.doc_uri, original.title, original.heading, original.similarity, original.score)
        assert p.extra["chunk_ids"] == original.extra["chunk_ids"] and p.extra["packed"]


def test_the_passage_rank_counts_when_the_reader_is_indifferent():
    hits = [hit(chunk_id=f"c{i}", doc=f"docs/{i}.md", chunk_ids=(f"c{i}",)) for i in range(5)]
    packed = pack("q", hits, lambda q, texts: [0.0] * len(texts), 120)
    assert [p.chunk_id for p in packed] == ["c0"]


def test_empty_and_short_inputs():
    assert pack("q", [], prefer("x"), 4000) == []
    assert pack("q", [hit()], prefer("x"), 0) == []
    assert pack("q", [hit("", heading=HEADING)], prefer("x"), 4000) == []  # a heading alone is no passage
    assert pack("q", [hit("   \n\n ", heading="")], prefer("x"), 4000) == []
    (tiny,) = pack("q", [hit("One line.", heading="")], prefer("x"), 4000)
    assert tiny.text == "One line."


def test_a_unit_longer_than_the_budget_is_cut_at_a_space():
    words = [f"word{i}" for i in range(300)]
    (packed,) = pack("q", [hit(" ".join(words) + ".", heading="")], prefer("word"), 100)
    assert len(packed.text) <= 100 and packed.text.endswith(OMISSION)
    assert packed.text.removesuffix(OMISSION).split() == words[: len(packed.text.removesuffix(OMISSION).split())]


def test_one_word_longer_than_the_budget_is_cut_too():
    (packed,) = pack("q", [hit("y" * 500, heading="")], prefer("y"), 50)
    assert packed.text == "y" * 49 + OMISSION


def test_a_token_budget_counts_with_the_given_counter():
    def count_words(texts):
        return [len(t.split()) for t in texts]

    packed = pack("q", [hit()], prefer("splunk"), 12, count=count_words)
    assert sum(count_words([p.text])[0] for p in packed) <= 12
    assert "Splunk" in packed[0].text


def test_the_packed_text_is_as_long_as_counted():
    """The incremental cost equals the rendered length: with a budget of exactly that, nothing is lost."""
    long_code = "```\n" + "\n".join(f"line {i} " + "x" * 30 for i in range(20)) + "\n```"
    hits = [hit(), hit(BODY + "\n\n" + long_code, chunk_id="c9", chunk_ids=("c9",))]
    for budget in range(40, 900, 37):
        packed = pack("q", hits, prefer("line 7", "token", "deleted"), budget)
        again = pack("q", hits, prefer("line 7", "token", "deleted"), total(packed))
        assert [p.text for p in again] == [p.text for p in packed]


def test_hostile_inputs_run_in_bounded_work():
    one_line = hit("a" * 10 + " " + "b" * 1_000_000, heading="")  # 1 MB, one word in effect
    scorer = prefer("b")
    packed = pack("q", [one_line], scorer, 4000)
    assert total(packed) <= 4000
    assert scorer.calls == [len(split(one_line).units)] and len(split(one_line).units) <= 1_000_000 // 400 + 3

    tiny = hit("x. " * 100_000, heading="")
    scorer = prefer("x")
    packed = pack("q", [tiny], scorer, 4000)
    assert total(packed) <= 4000 and scorer.calls == [100_000]

    spaces = hit("." + " " * 500_000 + "end.\n\n" + "|" * 100_000 + "\n\n" + "```" * 50_000, heading="")
    assert total(pack("q", [spaces], prefer("end"), 4000)) <= 4000


def test_the_extractive_answer_reads_packed_passages_sentence_by_sentence():
    (packed,) = pack("q", [hit()], prefer("splunk", "retention"), 150, neighbours=0)
    answer, used = extractive_answer("How long is the retention of audit records?", [packed])
    assert OMISSION not in answer and "Retention is thirty days by default." in answer and used == [0]


class FakeEmbedder:
    """Vectors from letter counts: deterministic and model-free."""

    def __init__(self):
        self.encoded = []

    def encode(self, texts):
        self.encoded.append(list(texts))
        vectors = np.array([[t.lower().count(c) for c in "abcdefghijklmnopqrstuvwxyz"] for t in texts], np.float32)
        return vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)


def test_the_embedding_scorer_is_a_cosine_with_a_cache():
    embedder = FakeEmbedder()
    scorer = EmbeddingScorer(embedder, cache_size=2)
    scores = scorer("zzz", ["zzz zz", "abc", "zzz zz"])
    assert scores[0] == pytest.approx(1.0) and scores[0] == scores[2] and scores[1] < 0.5
    assert embedder.encoded == [["zzz"], ["zzz zz", "abc"]]  # each distinct unit once, in one batch
    scorer("zzz", ["abc"])
    assert embedder.encoded[-1] == ["zzz"]  # the query; "abc" came from the cache


@pytest.mark.model
def test_retrieve_packs_within_the_budget_and_weighs_evidence_unpacked(indexed, embedder):
    from ragops.answer.abstention import AbstentionPolicy
    from ragops.answer.retrieval import Retriever

    class Reader:
        name = "fake-reader"
        calls = 0

        def score(self, query, texts):
            Reader.calls += 1
            return [float("blocked" in t) for t in texts]

    retriever = Retriever(indexed, embedder=embedder)
    question, policy = "What blocks a refresh that deletes documents?", AbstentionPolicy()
    plain = retriever.retrieve(question, 5, policy=policy)
    packed = retriever.retrieve(question, 5, config={"pack_chars": 200}, policy=policy)
    assert packed.hits and total(packed.hits) <= 200
    assert packed.evidence == plain.evidence
    assert set(packed.chunk_ids) <= {c for h in retriever.retrieve(question, 20).hits for c in h.extra["chunk_ids"]}
    assert "deletes more than a fifth" not in question and any("a fifth" in p.text for p in packed.hits)

    retriever.reranker = Reader()
    reread = retriever.retrieve(question, 5, config={"pack_chars": 120})
    assert Reader.calls == 1 and "blocked" in reread.hits[0].text and total(reread.hits) <= 120


@pytest.mark.model
def test_a_release_that_packs_answers_and_cites_from_the_packed_passages(indexed, embedder):
    import asyncio

    from ragops.answer.pipeline import AnswerService
    from ragops.registry import Registry
    from ragops.releases import create_release

    class Model:
        name = "fake-llm"
        prompt = ""

        async def complete(self, system, user):
            Model.prompt = user
            return "Deleting more than a fifth of the documents is blocked [1]."

    registry = Registry(indexed.registry_url)
    release = create_release(registry, "packed", None, {"pack_chars": 300}, "test")
    question = "What blocks a refresh that deletes documents?"
    for chat_model in (None, Model()):
        service = AnswerService(indexed, registry, embedder=embedder, chat_model=chat_model)
        result = asyncio.run(service.ask(question, "someone", release=release))
        assert result.fallback is None and result.hits and all(h.extra["packed"] for h in result.hits)
        assert total(result.hits) <= 300
        assert result.citations and {c["chunk_id"] for c in result.citations} <= {h.chunk_id for h in result.hits}
        assert result.chunk_ids == [c for h in result.hits for c in h.extra["chunk_ids"]]
    assert all(h.text in Model.prompt for h in result.hits)
