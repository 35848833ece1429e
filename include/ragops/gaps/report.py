"""The content-gap report of a period: ranked, named clusters of failed questions, where an answer would belong,
the trend against the previous period; stored for the RAG Ops page and posted to Slack."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
from sqlalchemy import select

from ragops.config import Settings
from ragops.errors import RagopsError
from ragops.gaps.clusters import Cluster, clusters
from ragops.gaps.nearest import LiveIndex
from ragops.gaps.questions import FailedQuestion, failed_questions
from ragops.ingest.embedding import Embedder
from ragops.registry import Registry
from ragops.registry.models import ContentGapReport

log = logging.getLogger(__name__)
REPRESENTATIVES = 3
REQUEST_IDS = 50  # per cluster in the stored report: the provenance the proposed test questions cite
# A best chunk this similar to the cluster's centroid means the document covers the topic's neighbourhood: extend it.
# Below it, the nearest document is only the least bad place, and the report says a new page may be needed.
CLOSE_DOCUMENT = 0.4
# A previous question counts for a cluster when its nearest centroid is that cluster's and it is at least as close as
# the cluster's farthest member, or this close (cosine, all-MiniLM-L6-v2: paraphrases sit above ~0.6, neighbouring
# topics ~0.3-0.5): a tight cluster would otherwise disown rephrasings of its own question.
SAME_QUESTION = 0.5
AHEAD = timedelta(minutes=5)  # clock skew between hosts a stored report's period end may be ahead of now
GROWTH = 1.5  # now / then at or beyond this is "growing", at or below its inverse "shrinking"


@dataclass
class GapCluster:
    rank: int
    name: str
    terms: list[str]
    users: int
    questions: int
    refused: int
    down_voted: int
    representatives: list[dict]
    request_ids: list[str]
    documents: list[dict]
    belongs_in: str | None
    new_page: bool  # no document is close: the answer may need a page of its own
    previous: int  # questions of the previous period as close to the centroid as this cluster's own members
    trend: str  # new | growing | steady | shrinking
    reasons: dict = field(default_factory=dict)  # the down-votes' reasons, counted


@dataclass
class GapReport:
    period_start: str
    period_end: str
    generated_at: str
    questions: int
    refused: int
    down_voted: int
    users: int
    capped: bool  # more failed questions than RAGOPS_GAPS_MAX_QUESTIONS: the newest were clustered
    clustered: int
    index_version: int | None
    embedding_model: str
    clusters: list[GapCluster]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "GapReport":
        return cls(**{**data, "clusters": [GapCluster(**c) for c in data["clusters"]]})


def _embed(embedder: Embedder, questions: list[FailedQuestion]) -> np.ndarray:
    if not questions:
        return np.zeros((0, 1), dtype=np.float32)
    return embedder.encode([q.question for q in questions])  # batched by the embedder (RAGOPS_EMBED_BATCH_SIZE)


def _trend(now: int, then: int) -> str:
    if then == 0:
        return "new"
    ratio = now / then
    return "growing" if ratio >= GROWTH else "shrinking" if ratio <= 1 / GROWTH else "steady"


def _previous_counts(found: list[Cluster], vectors: np.ndarray) -> list[int]:
    """Each previous question goes to its nearest centroid, and counts there if it is as close as that cluster's
    own members are (its radius) or SAME_QUESTION: the same kind of question, asked the period before."""
    counts = [0] * len(found)
    if not found or not len(vectors):
        return counts
    sims = vectors @ np.stack([c.centroid for c in found]).T
    nearest = sims.argmax(axis=1)
    for row, c in enumerate(nearest):
        if sims[row, c] >= min(found[c].radius, SAME_QUESTION):
            counts[c] += 1
    return counts


def _gap(found: Cluster, questions: list[FailedQuestion], vectors: np.ndarray, index: LiveIndex,
         previous: int) -> GapCluster:
    members = [questions[i] for i in found.members]
    reasons: dict[str, int] = {}
    for q in members:
        if q.reason:
            reasons[q.reason] = reasons.get(q.reason, 0) + 1
    documents = index.nearest_documents(found.centroid, found.terms)
    best = documents[0] if documents else None
    newest = sorted(members, key=lambda q: q.ts, reverse=True)
    return GapCluster(
        rank=0, name=", ".join(found.terms) or "(no distinctive terms)", terms=found.terms,
        users=len({q.user_hash for q in members}), questions=len(members),
        refused=sum(q.kind == "refused" for q in members), down_voted=sum(q.kind == "down_voted" for q in members),
        representatives=[questions[i].to_dict() for i in found.representatives(vectors, REPRESENTATIVES)],
        request_ids=[q.request_id for q in newest[:REQUEST_IDS]], documents=documents,
        belongs_in=best["doc_uri"] if best else None,
        new_page=best is None or best["similarity"] < CLOSE_DOCUMENT,
        previous=previous, trend=_trend(len(members), previous), reasons=reasons)


def analyse(settings: Settings, start: datetime, end: datetime, *, registry: Registry | None = None,
            embedder: Embedder | None = None) -> GapReport:
    """Cluster the failed questions of [start, end) and compare them with the period of equal length before."""
    registry = registry or Registry(settings.registry_url)
    limit = settings.gaps_max_questions
    questions, capped = failed_questions(registry, start, end, limit)
    before, _ = failed_questions(registry, start - (end - start), start, limit)
    index = LiveIndex.open(settings, registry, embedder)
    try:
        vectors = _embed(index.embedder, questions)
        found = clusters(vectors, [q.question for q in questions], settings.gaps_min_cluster_size) if questions else []
        then = _previous_counts(found, _embed(index.embedder, before)) if found else []
        gaps = [_gap(c, questions, vectors, index, p) for c, p in zip(found, then)]
    finally:
        index.close()
    gaps.sort(key=lambda g: (-g.users, -g.questions, g.name))
    gaps = gaps[:settings.gaps_top_clusters]
    for rank, g in enumerate(gaps, start=1):
        g.rank = rank
    log.info("content gaps %s..%s: %d failed questions, %d clusters", start, end, len(questions), len(found))
    return GapReport(
        period_start=start.isoformat(), period_end=end.isoformat(),
        generated_at=datetime.now(timezone.utc).isoformat(), questions=len(questions),
        refused=sum(q.kind == "refused" for q in questions), down_voted=sum(q.kind == "down_voted" for q in questions),
        users=len({q.user_hash for q in questions}), capped=capped, clustered=sum(len(c.members) for c in found),
        index_version=index.version_id, embedding_model=index.embedder.model_name, clusters=gaps)


def store_report(registry: Registry, report: GapReport) -> int:
    """Upsert by period: running a period again replaces its report (the DAG's retries are idempotent)."""
    end = datetime.fromisoformat(report.period_end)
    with registry.session() as s:
        row = s.scalars(select(ContentGapReport).where(ContentGapReport.period_end == end)).first()
        if row is None:
            row = ContentGapReport(period_end=end)
            s.add(row)
        row.period_start, row.report, row.ts = datetime.fromisoformat(report.period_start), report.to_dict(), \
            datetime.now(timezone.utc)
        s.flush()
        return row.id


def latest_report(registry: Registry) -> GapReport | None:
    """The newest report; one dated ahead of the clock (stored by a host whose clock ran fast) never hides it."""
    with registry.session() as s:
        row = s.scalars(select(ContentGapReport).where(
            ContentGapReport.period_end <= datetime.now(timezone.utc) + AHEAD).order_by(ContentGapReport.period_end.desc(),
                                                          ContentGapReport.id.desc()).limit(1)).first()
        return GapReport.from_dict(dict(row.report)) if row is not None else None


def post_report(settings: Settings, report: GapReport, notifier=None) -> bool:
    from ragops.notify import build_notifier
    from ragops.notify.blocks import content_gaps_report

    return (notifier or build_notifier(settings)).send(content_gaps_report(report.to_dict()))


def run_gaps(settings: Settings, since: timedelta, end: datetime | None = None, *, post: bool = True,
             registry: Registry | None = None, embedder: Embedder | None = None) -> GapReport:
    """Analyse the period `since` before `end` (the DAG passes its data interval's end, never now()), store the
    report and post it."""
    # a plain UTC datetime: Airflow passes a pendulum DateTime, whose arithmetic refuses the registry's naive values
    end = datetime.fromtimestamp((end or datetime.now(timezone.utc)).timestamp(), timezone.utc)
    if end > datetime.now(timezone.utc) + AHEAD:  # a report dated ahead would stay the page's newest until its date
        raise RagopsError(f"the period's end {end.isoformat()} is in the future: a content-gap report is made for a "
                          "period that has ended (trigger the run with today's logical date)")
    registry = registry or Registry(settings.registry_url)
    report = analyse(settings, end - since, end, registry=registry, embedder=embedder)
    store_report(registry, report)
    if post:
        post_report(settings, report)
    return report
