"""Ranked chunks become non-overlapping passages grown inside their section; weighted fusion keeps similarities."""

from ragops.answer.passages import RetrievalConfig, expand, weighted_rrf
from ragops.index import SearchHit


def _doc():
    chunks = [("Intro", "Intro\n\nintro text " + "i" * 80)]
    chunks += [("Setup", f"Setup\n\nstep {n} " + "s" * 80) for n in range(4)]
    chunks += [("Other", "Other\n\nother text " + "o" * 80)]
    return [SearchHit(f"c{i}", "doc.md", 1.0, text, heading) for i, (heading, text) in enumerate(chunks)]


def test_a_passage_grows_within_its_section_and_prints_the_heading_once():
    doc = _doc()
    [whole] = expand([doc[2]], lambda uri: doc, k=5, expand_chars=10_000)
    assert whole.extra["chunk_ids"] == ["c1", "c2", "c3", "c4"]  # then backward, still inside "Setup"
    [passage] = expand([doc[2]], lambda uri: doc, k=5, expand_chars=250)
    assert passage.extra["chunk_ids"] == ["c2", "c3", "c4"]  # forward first, never into "Other" or "Intro"
    assert passage.text.count("Setup") == 1 and passage.text.startswith("Setup\n\nstep 1")
    assert "step 2" in passage.text and "step 3" in passage.text and "other text" not in passage.text


def test_passages_never_repeat_a_chunk_and_stop_at_k():
    doc = _doc()
    ranked = [doc[2], doc[3], doc[1], doc[5], doc[0]]
    passages = expand(ranked, lambda uri: doc, k=2, expand_chars=150)
    shown = [c for p in passages for c in p.extra["chunk_ids"]]
    assert len(passages) == 2 and len(shown) == len(set(shown))
    assert passages[0].extra["chunk_ids"] == ["c2", "c3"] and passages[1].extra["chunk_ids"] == ["c1"]


def test_no_expansion_returns_the_ranked_chunks():
    doc = _doc()
    passages = expand([doc[4], doc[0]], lambda uri: [], k=5, expand_chars=0)
    assert [p.text for p in passages] == [doc[4].text, doc[0].text]


def test_dedupe_skips_text_an_earlier_passage_already_shows():
    doc = _doc()
    copy = SearchHit("x1", "other-guide.md", 1.0, "Setup\n\n" + doc[2].text.split("\n\n", 1)[1], "Setup")
    fresh = SearchHit("x2", "other-guide.md", 1.0, "Other\n\nsomething new", "Other")
    documents = {"doc.md": doc, "other-guide.md": [copy, fresh]}
    passages = expand([doc[2], copy, fresh], documents.__getitem__, k=5, expand_chars=0, dedupe=True)
    assert [p.chunk_id for p in passages] == ["c2", "x2"]  # the reused module is shown once
    both = expand([doc[2], copy, fresh], documents.__getitem__, k=5, expand_chars=0)
    assert [p.chunk_id for p in both] == ["c2", "x1", "x2"]
    # grown passages do not absorb text shown before either
    [first, second] = expand([copy, doc[1]], documents.__getitem__, k=5, expand_chars=10_000, dedupe=True)
    assert second.extra["chunk_ids"] == ["c1"]  # stops before c2, whose text the first passage showed


def test_per_document_cap_makes_room_for_other_documents():
    doc = _doc()
    other = [SearchHit("o1", "b.md", 1.0, "B\n\nb text", "B")]
    ranked = [doc[0], doc[2], doc[5], other[0]]
    capped = expand(ranked, lambda uri: [], k=3, expand_chars=0, per_document=2)
    assert [p.chunk_id for p in capped] == ["c0", "c2", "o1"]
    assert [p.chunk_id for p in expand(ranked, lambda uri: [], k=3, expand_chars=0)] == ["c0", "c2", "c5"]


def test_focus_grows_towards_the_neighbour_that_shares_the_query_terms():
    doc = [SearchHit(f"c{i}", "doc.md", 1.0, f"Setup\n\n{body}", "Setup")
           for i, body in enumerate(["configure the proxy certificate " + "p" * 60, "step " + "s" * 80,
                                     "unrelated tail " + "t" * 80])]
    [plain] = expand([doc[1]], lambda uri: doc, k=5, expand_chars=150)
    assert plain.extra["chunk_ids"] == ["c1", "c2"]  # forward first
    [focused] = expand([doc[1]], lambda uri: doc, k=5, expand_chars=150, query_terms={"proxy", "certificate"})
    assert focused.extra["chunk_ids"] == ["c0", "c1"] and focused.text.startswith("Setup\n\nconfigure the proxy")
    [tie] = expand([doc[1]], lambda uri: doc, k=5, expand_chars=150, query_terms={"absent"})
    assert tie.extra["chunk_ids"] == ["c1", "c2"]


def test_weighted_fusion_prefers_the_heavier_list_and_keeps_dense_similarity():
    dense = [SearchHit("a", "d", 0.9, "a", similarity=0.9), SearchHit("b", "d", 0.8, "b", similarity=0.8)]
    bm25 = [SearchHit("b", "d", 12.0, "b"), SearchHit("c", "d", 9.0, "c")]
    fused = weighted_rrf([(0.3, dense), (0.7, bm25)], 10)
    assert [h.chunk_id for h in fused] == ["b", "c", "a"]
    assert fused[0].similarity == 0.8 and fused[1].similarity is None
    assert [h.chunk_id for h in weighted_rrf([(1.0, dense), (0.0, bm25)], 10)][:2] == ["a", "b"]


def test_release_config_overrides_only_known_knobs():
    config = RetrievalConfig.from_config({"expand_chars": 0, "k": 5, "dense_weight": 0.7, "unknown": 1})
    assert config.expand_chars == 0 and config.dense_weight == 0.7 and config.bm25_weight == 0.5
    assert RetrievalConfig.from_config({"dedupe": False, "per_document": 2}).per_document == 2
