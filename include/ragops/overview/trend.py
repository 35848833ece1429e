"""The evaluation trend: hit rate and answer recall per run on one test set, regressions marked."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from ragops.config import Settings
from ragops.overview.moments import iso
from ragops.registry import Registry
from ragops.registry.models import EvalRun

RUNS = 30
HEADLINE = ("hit_rate", "answer_token_recall", "doc_mrr", "context_mrr", "fallback_rate")


def _point(run: EvalRun) -> dict:
    metrics, comparison = dict(run.metrics or {}), dict(run.comparison or {})
    return {"run_id": run.id, "at": iso(run.created_at), "release": run.release, "variant": run.variant, "n": run.n,
            "hit_rate": metrics.get("hit_rate"), "answer_recall": metrics.get("answer_token_recall"),
            "regressed": run.status == "regressed",
            "drops": [d["metric"] for d in comparison.get("drops", [])]
            + [f"{d['metric']} (cumulative)" for d in (comparison.get("cumulative") or {}).get("declines", [])],
            "below_floor": [b["metric"] for b in comparison.get("below_floor", [])]}


def evaluation_trend(settings: Settings, registry: Registry, now: datetime) -> dict:
    """The last RUNS runs on the test set of the newest run (scores on different test sets do not compare)."""
    with registry.session() as s:
        latest = s.scalars(select(EvalRun).order_by(EvalRun.id.desc()).limit(1)).first()
        if latest is None:
            return {"testset": None, "runs": [], "latest": None}
        runs = s.scalars(select(EvalRun).where(EvalRun.testset_hash == latest.testset_hash)
                         .order_by(EvalRun.id.desc()).limit(RUNS)).all()
        metrics = dict(latest.metrics or {})
        return {"testset": latest.testset, "runs": [_point(r) for r in reversed(runs)],
                "latest": _point(latest) | {"metrics": {k: metrics[k] for k in HEADLINE if k in metrics},
                                            "generator": latest.generator}}
