"""The grown test set: candidates proposed from live failures (through the real app), reviewed items accepted into
immutable versions, and the monthly evaluation reporting the fixed and the grown sets side by side."""

import hashlib
import json

import pytest
from gaps_traffic import send

from ragops.evaluation import growth
from ragops.evaluation.testset import InvalidTestset, load_testset
from ragops.monitoring.review import parse_window

FIXED = [{"id": "install", "question": "How do I start the platform on one machine?",
          "reference_answer": "Run make up.", "reference_doc_ids": ["install.md"]},
         {"id": "refresh", "question": "When does the refresh DAG run?",
          "reference_answer": "Weekly and whenever the source changes.", "reference_doc_ids": ["refresh.md"]}]


@pytest.fixture
def lived(indexed, embedder, tmp_path):
    """The small corpus after a month of traffic: two gaps, noise, and two answered questions voted down as wrong."""
    fixed = tmp_path / "fixed.jsonl"
    fixed.write_text("".join(json.dumps(i) + "\n" for i in FIXED))
    settings = indexed.model_copy(update={"eval_testset": str(fixed), "eval_unanswerable": "none"})
    traffic = send(settings, embedder, tmp_path, down={"answered": (slice(2, 4), "wrong")})
    return settings, traffic


def _service(settings, embedder):
    from ragops.answer.pipeline import AnswerService

    return AnswerService(settings, embedder=embedder)


def test_propose_writes_reviewable_candidates_with_their_provenance(lived, embedder, tmp_path):
    settings, traffic = lived
    candidates = growth.propose(settings, parse_window("30d"), service=_service(settings, embedder))
    gaps = [c for c in candidates if c["provenance"]["source"] == "content_gap"]
    down = [c for c in candidates if c["provenance"]["source"] == "down_voted"]
    assert len(gaps) == 6  # three representatives of each of the two clusters
    top = [c for c in gaps if c["provenance"]["rank"] == 1]
    assert all(c["provenance"]["request_id"] in traffic.request_ids["billing"] for c in top)
    assert all("billing" in c["provenance"]["cluster"] or "invoice" in c["provenance"]["cluster"] for c in top)
    assert {c["provenance"]["request_id"] for c in down} == set(traffic.request_ids["answered"][2:4])
    assert all(c["provenance"]["reason"] == "wrong" for c in down)
    assert all(c["reference_answer"] == "" and "fallback_now" in c["provenance"] for c in candidates)
    assert {c["provenance"]["fallback_now"] for c in gaps} == {"no_results"}  # what users get today
    assert len({c["id"] for c in candidates}) == len(candidates)
    path = growth.write_candidates(candidates, tmp_path / "proposed.jsonl")
    with pytest.raises(InvalidTestset, match="nothing to accept.*needs a reference answer"):
        growth.accept(settings, path, "cli:reviewer")  # unreviewed: nothing enters the set
    assert growth.latest_grown(settings) is None


def _reviewed(tmp_path, name, items):
    path = tmp_path / name
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return path


def test_accept_writes_a_new_version_and_never_edits_one(lived, tmp_path):
    settings, _ = lived
    first = _reviewed(tmp_path, "r1.jsonl", [
        {"id": "gap-1", "question": "How do I download my invoice?", "reference_answer": "From the billing page.",
         "reference_doc_ids": ["billing.md"], "provenance": {"source": "content_gap"}},
        {"id": "gap-2", "question": "How do I set up SAML SSO?", "reference_answer": "",
         "reference_doc_ids": ["sso.md"]},  # not reviewed yet: refused, the rest goes in
        {"id": "gap-3", "question": "Why was I charged twice?", "reference_answer": "Duplicate charges are refunded."}])
    one = growth.accept(settings, first, "cli:reviewer")
    assert (one["version"], one["items"], one["added"]) == (1, 1, ["gap-1"])
    assert {r["id"]: r["reason"][:30] for r in one["refused"]} == {"gap-2": "needs a reference answer: writ",
                                                                   "gap-3": "needs reference_doc_ids (the d"}
    v1 = growth.grown_dir(settings) / "v0001.jsonl"
    before = v1.read_bytes()
    assert hashlib.sha256(before).hexdigest() == one["sha256"]
    second = _reviewed(tmp_path, "r2.jsonl", [
        {"id": "gap-2", "question": "How do I set up SAML SSO?", "reference_answer": "In the SSO settings.",
         "reference_doc_ids": ["sso.md"]},
        {"id": "gap-9", "question": "how do i download my invoice?", "reference_answer": "x",
         "reference_doc_ids": ["b.md"]}])  # the same question again
    two = growth.accept(settings, second, "cli:reviewer")
    assert (two["version"], two["items"], two["added"]) == (2, 2, ["gap-2"])
    assert "already in the grown set" in two["refused"][0]["reason"]
    assert v1.read_bytes() == before  # version 1 is as it was
    grown = growth.latest_grown(settings)
    assert [i.id for i in grown.items] == ["gap-1", "gap-2"] and grown.path.endswith("v0002.jsonl")
    manifest = [json.loads(line) for line in (growth.grown_dir(settings) / "manifest.jsonl").read_text().splitlines()]
    assert [(m["version"], m["sha256"]) for m in manifest] == [(1, one["sha256"]), (2, load_testset(grown.path).sha256)]


def test_accept_bounds_its_input(lived, tmp_path):
    settings, _ = lived
    with pytest.raises(InvalidTestset, match="cannot read"):
        growth.accept(settings, tmp_path / "missing.jsonl", "cli:reviewer")
    huge = tmp_path / "huge.jsonl"
    huge.write_bytes(b"x" * (growth.MAX_FILE_BYTES + 1))
    with pytest.raises(InvalidTestset, match="larger than"):
        growth.accept(settings, huge, "cli:reviewer")
    bad = _reviewed(tmp_path, "bad.jsonl", [["not", "an", "object"], {"id": "q", "question": "x" * 3000,
                                                                      "reference_answer": "y",
                                                                      "reference_doc_ids": ["d"]}])
    with pytest.raises(InvalidTestset, match="not a JSON object.*at most 2000"):
        growth.accept(settings, bad, "cli:reviewer")


def test_the_evaluation_reports_the_fixed_and_grown_sets_side_by_side(lived, embedder, tmp_path):
    from ragops.evaluation.report import gate, post_reports
    from ragops.evaluation.runner import run_evaluation
    from ragops.notify import Outbox

    settings, _ = lived
    assert len(run_evaluation(settings, service=_service(settings, embedder))) == 1  # no grown set yet
    growth.accept(settings, _reviewed(tmp_path, "r.jsonl", [
        {"id": "gap-billing", "question": "How do I download my invoice for last month?",
         "reference_answer": "Invoices are under Billing, one PDF per month.", "reference_doc_ids": ["billing.md"]},
        {"id": "down-slack", "question": "Where do reports go when no Slack token is set?",
         "reference_answer": "To the outbox.", "reference_doc_ids": ["notes.txt"]}]), "cli:reviewer")
    fixed, grown = run_evaluation(settings, service=_service(settings, embedder))
    assert (fixed.testset_kind, fixed.n, grown.testset_kind, grown.n) == ("fixed", 2, "grown", 2)
    assert grown.metrics["hit_rate"] < fixed.metrics["hit_rate"]  # the billing question has no document yet
    post_reports(settings, [fixed, grown])
    [table] = [m for m in Outbox(settings.outbox_path).read() if "fixed and grown" in m["text"]]
    assert "hit_rate" in str(table["blocks"]) and f"runs {fixed.run_id} (fixed) and {grown.run_id}" in str(table["blocks"])
    grown.comparison["regressed"] = True
    gate([fixed, grown])  # the grown set reports; only the fixed set gates
