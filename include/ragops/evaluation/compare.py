"""Compare a run with its baseline question by question, with a paired test per metric, and with the floors.

A fixed tolerance on the mean judges a 12-question set and a 500-question set by different standards (one question
moves a 12-question hit rate by 0.083). A paired test asks instead whether the questions that got worse outnumber the
ones that got better by more than chance: McNemar's exact test for pass/fail scores, the Wilcoxon signed-rank test
for graded ones, one-sided, Holm-corrected over the metrics so that the whole comparison errs at most `alpha`.

To add a metric, append a `PairedMetric` to PAIRED: for example the abstention rate on unanswerable questions, where
a drop is a regression, is `PairedMetric("abstention_rate", "abstained", "binary")`.
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy.stats import binomtest, wilcoxon


@dataclass(frozen=True)
class PairedMetric:
    name: str  # the run-level metric (the mean over questions)
    key: str  # the per-question score
    kind: str  # "binary" (McNemar) or "graded" (Wilcoxon signed-rank)
    higher_is_better: bool = True


PAIRED: list[PairedMetric] = [
    PairedMetric("hit_rate", "hit", "binary"),
    PairedMetric("answer_token_recall", "answer_token_recall", "graded"),
    PairedMetric("doc_hit@5", "doc_hit@5", "binary"),
    PairedMetric("doc_mrr", "doc_mrr", "graded"),
    PairedMetric("context_hit@5", "context_hit@5", "binary"),
    PairedMetric("context_mrr", "context_mrr", "graded"),
]
HEADLINE = tuple(m.name for m in PAIRED)
GRADED_CHANGE = 0.1  # a graded score that moves this much names the question in the report


def paired_test(metric: PairedMetric, was: list[float], now: list[float]) -> dict:
    """One-sided p-value of "worse now", with the number of questions lost and gained."""
    sign = 1.0 if metric.higher_is_better else -1.0
    diffs = [sign * (n - w) for w, n in zip(was, now)]
    lost, gained = sum(1 for d in diffs if d < 0), sum(1 for d in diffs if d > 0)
    if lost == 0:
        p = 1.0
    elif metric.kind == "binary":
        p = binomtest(lost, lost + gained, 0.5, alternative="greater").pvalue  # McNemar's exact test
    else:
        p = wilcoxon([d for d in diffs if d], alternative="less").pvalue
    return {"n": len(diffs), "lost": lost, "gained": gained, "p": round(float(p), 6)}


def compare(metrics: dict, per_question: dict[str, dict], baseline: dict | None, baseline_questions: dict[str, dict],
            floors: dict[str, float], alpha: float) -> dict:
    """Regressed when a paired test (Holm-corrected) says a metric got worse, or a floor is missed."""
    tests = []
    if baseline:
        for metric in PAIRED:
            pairs = [(baseline_questions[q][metric.key], s[metric.key]) for q, s in per_question.items()
                     if s.get(metric.key) is not None and baseline_questions.get(q, {}).get(metric.key) is not None]
            if pairs:
                result = paired_test(metric, [w for w, _ in pairs], [n for _, n in pairs])
                tests.append({"metric": metric.name, "previous": baseline.get(metric.name),
                              "current": metrics.get(metric.name)} | result)
    _holm(tests, alpha)
    drops = [t | {"delta": round((t["current"] or 0) - (t["previous"] or 0), 4)} for t in tests if t["regressed"]]
    below = [{"metric": name, "floor": floor, "current": metrics[name]}
             for name, floor in floors.items() if name in metrics and metrics[name] < floor]
    return {"regressed": bool(drops or below), "baseline_run_id": (baseline or {}).get("_run_id"), "alpha": alpha,
            "tests": tests, "drops": drops, "below_floor": below,
            "questions": changed_questions(per_question, baseline_questions) if baseline else []}


def _holm(tests: list[dict], alpha: float) -> None:
    """Holm's step-down correction over the metrics: marks each test `regressed` or not."""
    for t in tests:
        t["regressed"] = False
    for rank, t in enumerate(sorted(tests, key=lambda t: t["p"])):
        if t["p"] > alpha / (len(tests) - rank):
            break
        t["regressed"] = True


def changed_questions(per_question: dict[str, dict], baseline_questions: dict[str, dict]) -> list[dict]:
    """Every question whose pass/fail flipped or whose graded score moved, worse ones first."""
    out = []
    for qid, now in per_question.items():
        was = baseline_questions.get(qid)
        if not was:
            continue
        lost, gained = [], []
        for metric in PAIRED:
            w, n = was.get(metric.key), now.get(metric.key)
            if w is None or n is None:
                continue
            delta = (n - w) if metric.higher_is_better else (w - n)
            threshold = 0.5 if metric.kind == "binary" else GRADED_CHANGE
            if delta <= -threshold:
                lost.append(metric.name)
            elif delta >= threshold:
                gained.append(metric.name)
        if lost or gained:
            out.append({"id": qid, "question": now.get("_question", ""), "worse": bool(lost) and not gained,
                        "lost": lost, "gained": gained, "was": round(was.get("answer_token_recall", 0) or 0, 3),
                        "now": round(now.get("answer_token_recall", 0) or 0, 3)})
    out.sort(key=lambda q: (not q["worse"], q["now"] - q["was"]))
    return out
