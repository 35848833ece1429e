"""Run a test set through the answer pipeline (in process or against a live URL), score, compare and store it."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from sqlalchemy import select

from ragops.config import Settings
from ragops.errors import RagopsError
from ragops.evaluation.abstention import UnanswerableSet, abstention_rates, load_unanswerable
from ragops.evaluation.compare import compare
from ragops.evaluation.scoring import containment, llm_judges, ragas_scores
from ragops.evaluation.testset import EvalSet, load_testset
from ragops.registry import Registry
from ragops.registry.models import EvalResult, EvalRun
from ragops.releases import ReleaseInfo, current_rollout

log = logging.getLogger(__name__)
SEARCH_K = 20  # as the RHDH baselines: 20 results per question, context cut at 4,000 characters


class EvaluationRegression(RagopsError):
    code = "evaluation_regressed"
    exit_code = 4


class NoIndexYet(RagopsError):
    """There is nothing to evaluate: no index version, or an empty one."""

    code = "no_index"
    exit_code = 6


@dataclass
class EvalReport:
    run_id: int
    release: str
    variant: str
    n: int
    metrics: dict
    comparison: dict
    duration_s: float
    testset: str
    index_version_id: int | None
    generator: str
    questions: list[dict] = field(default_factory=list)
    testset_kind: str = "fixed"  # fixed | grown: the grown set is reported beside the fixed one and gates nothing

    @property
    def regressed(self) -> bool:
        return bool(self.comparison.get("regressed"))

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "questions"} | {"regressed": self.regressed}


def side_by_side(reports: list[EvalReport]) -> dict | None:
    """The stable release on the fixed and on the grown test set, metric by metric; None without a grown set."""
    fixed = next((r for r in reports if r.testset_kind == "fixed" and r.variant == "stable"), None)
    grown = next((r for r in reports if r.testset_kind == "grown"), None)
    if fixed is None or grown is None:
        return None
    return {"release": fixed.release, "fixed": {"testset": fixed.testset, "n": fixed.n, "run_id": fixed.run_id},
            "grown": {"testset": grown.testset, "n": grown.n, "run_id": grown.run_id},
            "metrics": {m: {"fixed": fixed.metrics[m], "grown": grown.metrics[m]}
                        for m in fixed.metrics if m in grown.metrics}}


class InProcess:
    """The same AnswerService the app uses, pinned to one release."""

    def __init__(self, service, release: ReleaseInfo):
        self.service, self.release = service, release

    async def run(self, question: str) -> tuple[list[dict], str, str | None]:
        searched = await self.service.search(question, "evaluation", k=SEARCH_K, release=self.release)
        answered = await self.service.ask(question, "evaluation", release=self.release)
        hits = [{"chunk_id": h.chunk_id, "doc_uri": h.doc_uri, "text": h.text} for h in searched.hits]
        return hits, answered.answer, answered.fallback

    async def fallback(self, question: str) -> str | None:
        return (await self.service.ask(question, "evaluation", release=self.release)).fallback


class LiveUrl:
    """A running serving app, over HTTP (the release is whatever the app routes the `evaluation` user to)."""

    def __init__(self, base_url: str, client):
        self.base_url, self.client = base_url.rstrip("/"), client

    async def run(self, question: str) -> tuple[list[dict], str, str | None]:
        body = {"question": question, "user_id": "evaluation"}
        searched = (await self.client.post(f"{self.base_url}/v1/search", json=body | {"k": SEARCH_K})).json()
        answered = (await self.client.post(f"{self.base_url}/v1/ask", json=body)).json()
        return searched.get("results", []), answered.get("answer", ""), answered.get("fallback")

    async def fallback(self, question: str) -> str | None:
        body = {"question": question, "user_id": "evaluation"}
        return (await self.client.post(f"{self.base_url}/v1/ask", json=body)).json().get("fallback")


async def _collect(target, testset: EvalSet, concurrency: int = 4) -> list[tuple]:
    gate = asyncio.Semaphore(concurrency)

    async def one(item):
        async with gate:
            return item, *(await target.run(item.question))

    return await asyncio.gather(*(one(item) for item in testset.items))


async def _refusals(target, unanswerable: UnanswerableSet, concurrency: int = 4) -> list[str | None]:
    gate = asyncio.Semaphore(concurrency)

    async def one(item):
        async with gate:
            return await target.fallback(item.question)

    return await asyncio.gather(*(one(item) for item in unanswerable.items))


def evaluate_release(settings: Settings, testset: EvalSet, target, *, release: str, variant: str,
                     index_version_id: int | None, generator: str, registry: Registry, embedder=None,
                     baseline_release: str | None = None, unanswerable: UnanswerableSet | None = None) -> EvalReport:
    """Run, score, compare with the last accepted run of `baseline_release` (default: this release), store."""
    started = time.perf_counter()
    collected = asyncio.run(_collect(target, testset))
    if all(fallback == "store_unavailable" for *_, fallback in collected):
        raise NoIndexYet(f"every question of {testset.path} got store_unavailable from {release}: there is no index "
                         "to evaluate yet (run the document_refresh DAG or `ragops refresh` first)")
    refusals = asyncio.run(_refusals(target, unanswerable)) if unanswerable else []
    per_question, rows = {}, []
    for item, hits, answer, fallback in collected:
        texts, uris = [h["text"] for h in hits], [h["doc_uri"] for h in hits]
        answer_text = answer.split("\n", 1)[-1] if answer.startswith("Extractive answer") else answer
        per_question[item.id] = containment(item, texts, uris, answer_text) | {
            "_question": item.question, "_answer": answer, "_fallback": fallback, "_retrieved": [h["chunk_id"] for h in hits[:5]]}
        rows.append({"user_input": item.question, "retrieved_contexts": texts[:5] or [""],
                     "reference_contexts": item.reference_contexts, "response": answer_text or "",
                     "reference": item.reference_answer})
    llm, embeddings = llm_judges(settings, embedder) if embedder is not None else (None, None)
    for item, scores in zip(testset.items, ragas_scores(rows, llm, embeddings)):
        per_question[item.id] |= scores
    metrics = _means(per_question)
    if unanswerable:  # refusing what the corpus does not answer is measured, and gated, like recall
        metrics |= abstention_rates(unanswerable.items, refusals, [q["_fallback"] for q in per_question.values()])
        for q in per_question.values():  # paired per question by compare's false_abstention
            q["falsely_refused"] = float(q["_fallback"] == "no_results")
        for item, fallback in zip(unanswerable.items, refusals):
            refused = float(fallback == "no_results")
            per_question[f"unanswerable:{item.id}"] = {"refused": refused, f"refused_{item.category}": refused,
                                                       "_question": item.question, "_answer": "",
                                                       "_fallback": fallback, "_retrieved": [],
                                                       "_category": item.category}
    baseline, baseline_questions = last_accepted(registry, testset.sha256, baseline_release or release)
    reference, reference_questions = reference_run(registry, testset.sha256, baseline_release or release)
    comparison = compare(metrics, per_question, baseline, baseline_questions, settings.eval_floors, settings.eval_alpha,
                         reference=reference, reference_questions=reference_questions,
                         max_cumulative_drop=settings.eval_max_cumulative_drop)
    duration = round(time.perf_counter() - started, 2)
    with registry.session() as s:
        passed = not comparison["regressed"]
        run = EvalRun(testset=testset.path, testset_hash=testset.sha256, release=release, variant=variant,
                      index_version_id=index_version_id, embedding_model=settings.embedding_model, generator=generator,
                      n=len(testset.items), metrics=metrics, comparison=comparison,
                      status="ok" if passed else "regressed", duration_s=duration,
                      accepted_by="gate" if passed else None, accepted_at=datetime.now(timezone.utc) if passed else None)
        s.add(run)
        s.flush()
        s.add_all(EvalResult(run_id=run.id, question_id=qid, question=q["_question"], answer=q["_answer"] or "",
                             fallback=q["_fallback"], retrieved=q["_retrieved"],
                             metrics={k: v for k, v in q.items() if not k.startswith("_")})
                  for qid, q in per_question.items())
        run_id = run.id
    return EvalReport(run_id, release, variant, len(testset.items), metrics, comparison, duration, testset.path,
                      index_version_id, generator,
                      [{"id": qid} | {k: v for k, v in q.items() if k in ("_question", "answer_token_recall", "hit")}
                       for qid, q in per_question.items()])


def _means(per_question: dict[str, dict]) -> dict:
    sums: dict[str, list[float]] = {}
    for scores in per_question.values():
        for name, value in scores.items():
            if not name.startswith("_") and value is not None:
                sums.setdefault("hit_rate" if name == "hit" else name, []).append(float(value))
    return {name: round(sum(v) / len(v), 4) for name, v in sums.items()} | {
        "fallback_rate": round(sum(1 for q in per_question.values() if q["_fallback"]) / max(1, len(per_question)), 4)}


def last_accepted(registry: Registry, testset_hash: str, release: str) -> tuple[dict | None, dict[str, dict]]:
    """The baseline: the newest accepted run of `release` on this test set (a regressed run never is one)."""
    return _accepted(registry, testset_hash, release, EvalRun.id.desc())


def reference_run(registry: Registry, testset_hash: str, release: str) -> tuple[dict | None, dict[str, dict]]:
    """The long-term reference a baseline may not slide away from: the run of `release` on this test set that a
    person accepted last (`ragops eval accept`), else the first run accepted at all."""
    by_person = _accepted(registry, testset_hash, release, EvalRun.id.desc(), EvalRun.accepted_by != "gate")
    return by_person if by_person[0] else _accepted(registry, testset_hash, release, EvalRun.id.asc())


def _accepted(registry: Registry, testset_hash: str, release: str, order, *where) -> tuple[dict | None, dict]:
    with registry.session() as s:
        run = s.scalars(select(EvalRun).where(EvalRun.testset_hash == testset_hash, EvalRun.release == release,
                                              EvalRun.accepted_at.is_not(None), *where)
                        .order_by(order).limit(1)).first()
        if run is None:
            return None, {}
        results = s.scalars(select(EvalResult).where(EvalResult.run_id == run.id)).all()
        return dict(run.metrics) | {"_run_id": run.id}, {r.question_id: dict(r.metrics) for r in results}


def run_evaluation(settings: Settings, testset_path: str | None = None, *, url: str | None = None, service=None,
                   registry: Registry | None = None) -> list[EvalReport]:
    """Evaluate the stable release and, when a rollout has one, the candidate. Returns one report per release, then,
    when a grown test set exists (evaluation/growth.py), one for the stable release on it."""
    from ragops.evaluation.growth import latest_grown

    reports = _run_fixed(settings, testset_path, url=url, service=service, registry=registry)
    grown = latest_grown(settings)
    if grown is None:
        return reports
    stable = reports[0]
    if url:
        report = _run_fixed(settings, grown.path, url=url, registry=registry, unanswerable=False)[0]
    else:
        service = service or _service(settings, registry or Registry(settings.registry_url))
        release = current_rollout(service.registry).stable
        report = evaluate_releases(settings, grown, service, [("stable", release)], service.registry,
                                   unanswerable=False)[0]
    report.testset_kind = "grown"
    log.info("grown test set %s: run %d beside the fixed set's run %d", grown.path, report.run_id, stable.run_id)
    return reports + [report]


def _service(settings: Settings, registry: Registry):
    from ragops.answer.llm import build_chat_model
    from ragops.answer.pipeline import AnswerService

    return AnswerService(settings, registry, chat_model=build_chat_model(settings))


def _run_fixed(settings: Settings, testset_path: str | None = None, *, url: str | None = None, service=None,
               registry: Registry | None = None, unanswerable: bool = True) -> list[EvalReport]:
    testset = load_testset(testset_path or settings.eval_testset)
    registry = registry or (service.registry if service else Registry(settings.registry_url))
    if url:
        import httpx

        key = settings.api_key.get_secret_value() if settings.api_key else None  # else limited as one address
        async_client = httpx.AsyncClient(timeout=60, headers={"X-API-Key": key} if key else None)
        try:
            return [evaluate_release(settings, testset, LiveUrl(url, async_client), release=url, variant="stable",
                                     index_version_id=None, generator="http", registry=registry,
                                     unanswerable=unanswerable_set(settings) if unanswerable else None)]
        finally:
            asyncio.run(async_client.aclose())
    if service is None:
        service = _service(settings, registry)
    rollout = current_rollout(registry)
    releases = [("stable", rollout.stable)] + ([("candidate", rollout.candidate)] if rollout.candidate else [])
    return evaluate_releases(settings, testset, service, releases, registry)


def evaluate_releases(settings: Settings, testset: EvalSet, service, releases: list[tuple[str, ReleaseInfo]],
                      registry: Registry, *, unanswerable: bool = True) -> list[EvalReport]:
    """Evaluate releases in order; each is compared with the last accepted run of the first (the stable release)."""
    from ragops.monitoring.health import index_status

    _, live = service.rollout()
    generator = service.chat_model.name if service.chat_model else "extractive"
    refusals = unanswerable_set(settings) if unanswerable else None
    versions = []
    for _, release in releases:
        version = service._resolve(release.index_version_id) if release.index_version_id else live
        status = index_status(settings, registry, version)
        if not status.ok:
            raise NoIndexYet(f"nothing to evaluate for {release.name}: {status.detail}")
        versions.append(version)
    return [evaluate_release(settings, testset, InProcess(service, release), release=release.name, variant=variant,
                             index_version_id=version, generator=generator, registry=registry,
                             embedder=service.embedder, baseline_release=releases[0][1].name,
                             unanswerable=refusals)
            for (variant, release), version in zip(releases, versions)]


def unanswerable_set(settings: Settings) -> UnanswerableSet | None:
    """The questions the corpus does not answer (RAGOPS_EVAL_UNANSWERABLE; 'none' skips abstention metrics)."""
    return None if settings.eval_unanswerable == "none" else load_unanswerable(settings.eval_unanswerable)


def accept_run(registry: Registry, run_id: int, actor: str) -> dict:
    """A person accepts a run as the baseline for later ones (for example an intended change in the test results)."""
    with registry.session() as s:
        run = s.get(EvalRun, run_id)
        if run is None:
            raise RagopsError(f"there is no evaluation run {run_id}")
        if run.accepted_at is None:
            run.accepted_by, run.accepted_at = actor, datetime.now(timezone.utc)
        return {"run_id": run.id, "release": run.release, "status": run.status, "accepted_by": run.accepted_by,
                "accepted_at": run.accepted_at.isoformat()}
