"""Post evaluation results to Slack (with a trend chart) and gate on regressions."""

from __future__ import annotations

from sqlalchemy import select

from ragops.config import Settings
from ragops.evaluation.runner import EvalReport, EvaluationRegression, side_by_side
from ragops.notify import build_notifier
from ragops.notify.blocks import eval_report, eval_side_by_side
from ragops.notify.charts import trend_chart
from ragops.registry import Registry
from ragops.registry.models import EvalRun

TREND = ["answer_token_recall", "hit_rate", "doc_mrr", "context_mrr"]


def post_reports(settings: Settings, reports: list[EvalReport], registry: Registry | None = None,
                 notifier=None) -> list[str]:
    """One Slack message per evaluated release; returns the chart paths."""
    registry = registry or Registry(settings.registry_url)
    notifier = notifier or build_notifier(settings)
    charts = []
    table = side_by_side(reports)
    for report in [r for r in reports if r.testset_kind == "fixed"]:
        with registry.session() as s:
            run = s.get(EvalRun, report.run_id)
            history = s.scalars(select(EvalRun).where(EvalRun.testset_hash == run.testset_hash,
                                                      EvalRun.variant == run.variant, EvalRun.id <= run.id)
                                .order_by(EvalRun.id.desc()).limit(12)).all()
            points = [(r.created_at, dict(r.metrics)) for r in reversed(history)]
            baseline_id = (run.comparison or {}).get("baseline_run_id")
            baseline = s.get(EvalRun, baseline_id) if baseline_id else None
            previous = dict(baseline.metrics) | {"_run_id": baseline.id} if baseline else None
        chart = trend_chart(points, [m for m in TREND if m in report.metrics],
                            settings.home / "charts" / f"eval-{report.run_id}.png",
                            f"Evaluation trend: {report.release} ({report.variant})")
        charts.append(str(chart))
        notifier.send(eval_report(report.to_dict(), previous, str(chart)))
    if table:  # the grown set is not a second verdict: it shows how the release does on the questions users asked
        notifier.send(eval_side_by_side(table))
    return charts


def gate(reports: list[EvalReport]) -> None:
    """Fail loudly when any evaluated release regressed, naming metrics and questions."""
    failed = [r for r in reports if r.regressed and r.testset_kind == "fixed"]
    if not failed:
        return
    parts = []
    for r in failed:
        c = r.comparison
        metrics = ", ".join(f"{d['metric']} {d['previous']:.3f}→{d['current']:.3f} ({d['lost']} questions lost, "
                            f"{d['gained']} gained, p={d['p']:.4f})" for d in c["drops"])
        floors = ", ".join(f"{b['metric']} {b['current']:.3f} beyond its floor {b['floor']:.3f}"
                           for b in c["below_floor"])
        questions = ", ".join(q["id"] for q in c["questions"] if q["worse"])
        parts.append(f"{r.release} ({r.variant}, run {r.run_id} against baseline run {c.get('baseline_run_id')}): "
                     f"{'; '.join(x for x in (metrics, floors, cumulative_decline(c)) if x)}; "
                     f"questions that got worse: {questions or 'none'}")
    raise EvaluationRegression("evaluation regressed: " + " | ".join(parts))


def cumulative_decline(comparison: dict) -> str:
    """The decline since the long-term reference run, in words ('' when there is none)."""
    c = comparison.get("cumulative") or {}
    if not c.get("declined"):
        return ""
    metrics = ", ".join(f"{d['metric']} {_num(d['reference'])}→{_num(d['current'])} ({d['lost']} lost, "
                        f"{d['gained']} gained, p={d['p']:.4f})" for d in c["declines"])
    return (f"cumulative decline since reference run {c['reference_run_id']} (bound {c['max_drop']:.2f}): {metrics}")


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
