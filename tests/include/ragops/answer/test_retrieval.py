"""Retrieval quality on the shared RHDH set: the right passage comes back for real questions."""

import json

import pytest

from ragops.answer.retrieval import Retriever
from ragops.ingest.refresh import Refresher

GUIDES = ["audit-log", "telemetry", "techdocs", "adoption-insights"]


@pytest.fixture(scope="module")
def rhdh_index(rhdh, tmp_path_factory, embedder):
    from ragops.config import Settings

    corpus = tmp_path_factory.mktemp("rhdh")
    for guide in GUIDES:
        (corpus / f"{guide}.txt").write_text((rhdh / "docs" / guide / "master.txt").read_text())
    settings = Settings(home=tmp_path_factory.mktemp("home"), source=corpus.as_uri())
    Refresher(settings, embedder=embedder).run()
    return settings


def _questions(rhdh, guide):
    """Dev-set questions whose reference passage is from one of the indexed guides."""
    text = (rhdh / "docs" / guide / "master.txt").read_text()
    norm = " ".join(text.split())
    for line in (rhdh / "dev.jsonl").read_text().splitlines():
        item = json.loads(line)
        context = item["reference_contexts"][0]
        probe = " ".join(context.split())[-200:]
        if probe and probe in norm:
            yield item


def test_search_finds_the_reference_passage(rhdh, rhdh_index, embedder):
    retriever = Retriever(rhdh_index, embedder=embedder)
    items = [(g, q) for g in GUIDES for q in _questions(rhdh, g)]
    assert len(items) >= 5, "expected dev questions about the indexed guides"
    hits_at_5 = 0
    for guide, item in items:
        results = retriever.search(item["question"], k=5)
        answer_words = {w for w in item["reference_answer"].lower().split() if len(w) > 4}
        found = any(r.doc_uri.endswith(f"{guide}.txt") and len(answer_words & set(r.text.lower().split())) >= len(answer_words) // 3
                    for r in results)
        hits_at_5 += found
    assert hits_at_5 / len(items) >= 0.7, f"{hits_at_5}/{len(items)} questions found their passage in the top 5"


def test_keyword_query_finds_its_guide(rhdh_index, embedder):
    retriever = Retriever(rhdh_index, embedder=embedder)
    top = retriever.search("audit log retention", k=3)
    assert top[0].doc_uri.endswith("audit-log.txt")
