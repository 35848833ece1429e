"""The runner on the bundled test set, on the shared RHDH dev set, and catching a deliberately degraded index."""

import json

import pytest
from sqlalchemy import func, select

from ragops.evaluation.report import gate, post_reports
from ragops.evaluation.runner import EvaluationRegression, NoIndexYet, accept_run, run_evaluation
from ragops.evaluation.testset import load_testset
from ragops.ingest.refresh import Refresher
from ragops.registry import Registry
from ragops.registry.models import EvalResult, EvalRun

DOCS = __import__("pathlib").Path(__file__).resolve().parents[4] / "docs"


def test_bundled_testset_scores_and_is_stored(docs_index, embedder):
    from ragops.answer.pipeline import AnswerService

    service = AnswerService(docs_index, embedder=embedder)
    [report] = run_evaluation(docs_index, service=service)
    n = len(load_testset().items)
    assert report.n == n and report.variant == "stable" and report.generator == "extractive"
    # Measured on the 84 questions of issue 20 (docs/benchmarks.md): hit rate 0.893 (75 of 84), doc_mrr 0.814. On
    # the first 12 alone they were 0.917 and 0.799 (issue 19 had added about 10% more text to docs/, its own corpus).
    assert report.metrics["hit_rate"] >= 0.8 and report.metrics["doc_mrr"] >= 0.75
    assert {"non_llm_context_recall", "rouge_score", "answer_token_recall", "context_mrr"} <= set(report.metrics)
    with Registry(docs_index.registry_url).session() as s:
        assert s.scalar(select(func.count()).select_from(EvalResult).where(
            EvalResult.run_id == report.run_id, EvalResult.question_id.not_like("unanswerable:%"))) == n
        assert s.get(EvalRun, report.run_id).testset_hash == load_testset().sha256


def test_degraded_index_is_caught_as_a_regression(docs_index, embedder, tmp_path):
    from ragops.answer.pipeline import AnswerService

    [baseline] = run_evaluation(docs_index, service=AnswerService(docs_index, embedder=embedder))
    assert not baseline.regressed
    corpus = tmp_path / "half"
    corpus.mkdir()
    kept = ["index.md", "getting-started.md", "cli.md", "serving.md"]
    for name in kept:
        (corpus / name).write_text((DOCS / name).read_text())
    degraded = docs_index.model_copy(update={"source": corpus.as_uri()})
    Refresher(degraded, embedder=embedder).run(allow_mass_delete=True)  # the refresh.md, configuration.md... are gone
    [report] = run_evaluation(degraded, service=AnswerService(degraded, embedder=embedder, rollout_ttl_s=0))
    assert report.regressed and report.comparison["baseline_run_id"] == baseline.run_id
    named = {q["id"] for q in report.comparison["questions"] if q["worse"]}
    gone = {i.id for i in load_testset().items if not set(i.reference_doc_ids) & set(kept)}
    # A question whose page is kept may still rank lower in a corpus a quarter the size (BM25's statistics change),
    # so it can be named for a graded score; only a question whose pages are gone loses its hit.
    lost_hit = {q["id"] for q in report.comparison["questions"] if "hit_rate" in q["lost"]}
    assert named and lost_hit <= gone and len(lost_hit) >= len(gone) // 2
    with pytest.raises(EvaluationRegression, match="hit_rate|doc_mrr"):
        gate([report])
    [again] = run_evaluation(degraded, service=AnswerService(degraded, embedder=embedder, rollout_ttl_s=0))
    assert again.regressed and again.comparison["baseline_run_id"] == baseline.run_id  # a regression never is one
    accepted = accept_run(Registry(degraded.registry_url), again.run_id, "cli:ops")
    assert accepted["accepted_by"] == "cli:ops" and accepted["accepted_at"]
    [after] = run_evaluation(degraded, service=AnswerService(degraded, embedder=embedder, rollout_ttl_s=0))
    assert not after.regressed and after.comparison["baseline_run_id"] == again.run_id
    post_reports(degraded, [report])
    message = json.loads((degraded.home / "outbox.jsonl").read_text().splitlines()[-1])
    assert message["kind"] == "alert" and "REGRESSED" in message["text"] and message["files"][0].endswith(".png")
    assert any(q in json.dumps(message["blocks"]) for q in named)


def test_runner_on_the_shared_rhdh_dev_set(rhdh, tmp_path, embedder):
    """A subset of the dev set whose answers lie in four indexed guides (the full set is bench/eval.py)."""
    from ragops.answer.pipeline import AnswerService
    from ragops.config import Settings

    guides = ["audit-log", "telemetry", "techdocs", "adoption-insights"]
    corpus = tmp_path / "rhdh"
    corpus.mkdir()
    texts = {}
    for guide in guides:
        texts[guide] = (rhdh / "docs" / guide / "master.txt").read_text()
        (corpus / f"{guide}.txt").write_text(texts[guide])
    normalized = {g: " ".join(t.split()) for g, t in texts.items()}
    subset = tmp_path / "dev-subset.jsonl"
    with open(subset, "w") as out:
        for line in (rhdh / "dev.jsonl").read_text().splitlines():
            item = json.loads(line)
            probe = " ".join(item["reference_contexts"][0].split())[-200:]
            if any(probe in t for t in normalized.values()):
                out.write(line + "\n")
    settings = Settings(home=tmp_path / "home", source=corpus.as_uri())
    Refresher(settings, embedder=embedder).run()
    [report] = run_evaluation(settings, str(subset), service=AnswerService(settings, embedder=embedder))
    assert report.n >= 5
    # 7 questions: neighbour expansion (chosen by cross-validation over all 140, docs/benchmarks.md) costs two of
    # them part of their answer here (recall 0.697 against 0.798 with 256-token chunks and no expansion).
    assert report.metrics["answer_token_recall"] >= 0.65 and report.metrics["context_hit@5"] >= 0.7


def test_llm_judged_metrics_call_the_configured_endpoint(docs_index, embedder):
    """With RAGOPS_LLM_BASE_URL set, ragas' faithfulness, answer relevancy and context recall are judged by it.

    The fake endpoint answers every prompt with the same sentence, which ragas cannot parse as a verdict, so the
    scores are missing (None), and the run still completes and is stored: a judge outage never loses a run.
    """
    from support import FakeLLM

    from ragops.answer.llm import OpenAIChatModel
    from ragops.answer.pipeline import AnswerService

    llm = FakeLLM()
    try:
        settings = docs_index.model_copy(update={"llm_base_url": llm.base_url, "llm_model": "test-model",
                                                 "llm_timeout_s": 5.0})
        service = AnswerService(settings, embedder=embedder, chat_model=OpenAIChatModel(llm.base_url, "test-model"))
        [report] = run_evaluation(settings, service=service)
    finally:
        llm.close()
    assert report.generator == "test-model" and report.n == len(load_testset().items)
    judged = llm.calls - report.n  # one call per answer; the rest came from the ragas judges
    assert judged > 0
    with Registry(docs_index.registry_url).session() as s:
        stored = s.scalars(select(EvalResult).where(EvalResult.run_id == report.run_id)).first()
    assert {"faithfulness", "answer_relevancy"} & set(stored.metrics)


def test_abstention_rates_are_reported_and_stored_per_question(docs_index, embedder):
    from ragops.answer.pipeline import AnswerService
    from ragops.evaluation.abstention import load_unanswerable

    [report] = run_evaluation(docs_index, service=AnswerService(docs_index, embedder=embedder))
    metrics = report.metrics
    assert {"abstention_near", "abstention_far", "false_abstention"} <= set(metrics)
    # false_abstention 0.119 measured (10 of the 84 questions refused with no_results, 8 of them with the answer
    # retrieved; 0 of the first 12): the rule was fitted on the RHDH dev questions (0.021 there, docs/benchmarks.md),
    # and it refuses short questions in everyday words ("Will a single failed request at night page someone?").
    assert metrics["abstention_far"] >= 0.9 and metrics["false_abstention"] <= 0.15
    items = load_unanswerable().items
    with Registry(docs_index.registry_url).session() as s:
        rows = s.scalars(select(EvalResult).where(EvalResult.run_id == report.run_id,
                                                  EvalResult.question_id.like("unanswerable:%"))).all()
        assert len(rows) == len(items) and all(r.metrics["refused"] in (0.0, 1.0) for r in rows)
        refused = sum(r.metrics["refused"] for r in rows if r.question_id.startswith("unanswerable:far"))
    assert refused / sum(1 for i in items if i.category == "far") == metrics["abstention_far"]


def test_no_index_or_an_empty_one_fails_clearly(settings, embedder):
    """First boot: evaluating before any refresh says so, instead of posting "ok" at hit rate 0.000."""
    from ragops.answer.pipeline import AnswerService
    from ragops.index import open_store
    from ragops.registry.models import IndexVersion

    service = AnswerService(settings, embedder=embedder)
    with pytest.raises(NoIndexYet, match="there is no index yet"):
        run_evaluation(settings, service=service)
    store = open_store(settings, "chunks")
    store.rebuild([__import__("ragops.index", fromlist=["IndexedChunk"]).IndexedChunk(
        "c1", "file:///x.md", "h", 0, "", "", "text", embedder.encode(["text"])[0])])
    store.apply([], replace_docs=[], delete_docs=["file:///x.md"])  # an index that exists but holds nothing
    registry = Registry(settings.registry_url)
    with registry.session() as s:
        s.add(IndexVersion(store="lance", collection="chunks", store_version=store.version(),
                           embedding_model=settings.embedding_model, n_documents=0, n_chunks=0, status="live"))
    with pytest.raises(NoIndexYet, match="is empty"):
        run_evaluation(settings, service=AnswerService(settings, registry, embedder=embedder, rollout_ttl_s=0))
    with registry.session() as s:
        assert s.scalar(select(func.count()).select_from(EvalRun)) == 0  # nothing recorded as a result


class _Sliding:
    """A target that loses the answer of the first `lost` questions of the synthetic set."""

    def __init__(self, lost: int):
        self.lost = lost

    async def run(self, question: str):
        i = int(question.split()[1].rstrip("?"))
        text = f"alpha bravo charlie delta echo {i}" if i >= self.lost else "nothing relevant here"
        return [{"chunk_id": f"c{i}", "doc_uri": f"file:///doc{i}.md", "text": text}], text, None

    async def fallback(self, question: str):
        return None


def _synthetic_set(tmp_path, n: int = 12):
    path = tmp_path / "slide.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "question": f"question {i}?",
                                        "reference_answer": f"alpha bravo charlie delta echo {i}",
                                        "reference_contexts": [f"alpha bravo charlie delta echo {i}"]}) + "\n"
                            for i in range(n)))
    return load_testset(path)


def _evaluate(settings, testset, registry, lost: int):
    from ragops.evaluation.runner import evaluate_release

    return evaluate_release(settings, testset, _Sliding(lost), release="live", variant="stable",
                            index_version_id=None, generator="extractive", registry=registry)


@pytest.fixture
def no_ragas(monkeypatch):
    monkeypatch.setattr("ragops.evaluation.runner.ragas_scores", lambda rows, *a: [{} for _ in rows])


def test_a_slide_of_one_question_per_run_is_caught_within_the_bound(settings, tmp_path, no_ragas):
    """12 runs, each losing one more question: each step passes against the last baseline, but never more than
    eval_max_cumulative_drop (0.10) below the reference is accepted, and every later run is flagged."""
    registry, testset = Registry(settings.registry_url), _synthetic_set(tmp_path)
    reports = [_evaluate(settings, testset, registry, lost) for lost in range(12)]
    assert [r.metrics["hit_rate"] for r in reports][:3] == [1.0, 0.9167, 0.8333]
    flagged = [r for r in reports if r.regressed]
    assert flagged and flagged[0].metrics["hit_rate"] >= 1.0 - 0.10 - 1 / 12  # caught within one question of the bound
    assert all(r.regressed for r in reports[reports.index(flagged[0]):])
    assert all(r.comparison["cumulative"]["declined"] for r in flagged)
    with registry.session() as s:
        accepted = s.scalars(select(EvalRun).where(EvalRun.accepted_at.is_not(None))).all()
        assert min(r.metrics["hit_rate"] for r in accepted) >= 1.0 - 0.10
    with pytest.raises(EvaluationRegression, match="cumulative decline"):
        gate([reports[-1]])


def test_a_person_accepting_a_run_moves_the_reference(settings, tmp_path, no_ragas):
    registry, testset = Registry(settings.registry_url), _synthetic_set(tmp_path)
    _evaluate(settings, testset, registry, 0)
    lower = _evaluate(settings, testset, registry, 3)
    assert lower.regressed
    accept_run(registry, lower.run_id, "cli:ops")  # an intended change: the new reference
    again = _evaluate(settings, testset, registry, 3)
    assert not again.regressed and again.comparison["cumulative"]["reference_run_id"] == lower.run_id


def test_no_baseline_and_a_hit_rate_of_zero_fails_and_is_never_the_baseline(settings, tmp_path, no_ragas):
    registry, testset = Registry(settings.registry_url), _synthetic_set(tmp_path)
    first = _evaluate(settings, testset, registry, 12)
    assert first.metrics["hit_rate"] == 0.0 and first.regressed
    assert {b["metric"] for b in first.comparison["below_floor"]} >= {"hit_rate"}
    second = _evaluate(settings, testset, registry, 0)
    assert not second.regressed and second.comparison["baseline_run_id"] is None
    with registry.session() as s:
        assert s.get(EvalRun, first.run_id).accepted_at is None and s.get(EvalRun, second.run_id).accepted_by == "gate"
