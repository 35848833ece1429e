"""Compare a run with its baseline question by question, with a paired test per metric, and with the floors.

A fixed tolerance on the mean judges a 12-question set and a 500-question set by different standards (one question
moves a 12-question hit rate by 0.083). A paired test asks instead whether the questions that got worse outnumber the
ones that got better by more than chance: McNemar's exact test for pass/fail scores, the Wilcoxon signed-rank test
for graded ones, one-sided. The primary metric (hit_rate) is tested first at the full `alpha`; the others are
Holm-corrected among themselves at `alpha`, so a loss on the primary is not diluted by eight secondary metrics (7 of
12 questions lost gives p = 0.0078, which Holm over nine metrics let pass).

A baseline can slide one insignificant step at a time, so a run is also compared with a long-term reference (the
runner picks it): a decline of more than `max_cumulative_drop` on any metric, or a paired test that says it got
worse, is a cumulative decline and a regression. With no baseline the DEFAULT_FLOORS apply; a floor on a metric
where lower is better (false_abstention) is a ceiling.

To add a metric, append a `PairedMetric` to PAIRED, as the abstention rates on unanswerable questions are.
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
    # Issue 12, measured when an unanswerable set is (the default): refusing what the corpus does not answer...
    PairedMetric("abstention_near", "refused_near", "binary"),
    PairedMetric("abstention_far", "refused_far", "binary"),
    # ...and not refusing (`no_results`) the answerable questions.
    PairedMetric("false_abstention", "falsely_refused", "binary", higher_is_better=False),
]
HEADLINE = tuple(m.name for m in PAIRED)
BY_NAME = {m.name: m for m in PAIRED}
PRIMARY = "hit_rate"  # tested first, at the full alpha
DEFAULT_FLOORS = {"hit_rate": 0.5, "answer_token_recall": 0.5}  # without a baseline; RAGOPS_EVAL_FLOORS overrides
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
            floors: dict[str, float], alpha: float, *, reference: dict | None = None,
            reference_questions: dict[str, dict] | None = None, max_cumulative_drop: float = 0.10) -> dict:
    """Regressed when a paired test says a metric got worse than the baseline, a floor is missed (the defaults too
    when there is no baseline), or the run has declined beyond a bound since the long-term `reference`."""
    tests = _tests(metrics, per_question, baseline, baseline_questions, alpha) if baseline else []
    drops = [t | {"delta": round((t["current"] or 0) - (t["previous"] or 0), 4)} for t in tests if t["regressed"]]
    below = [{"metric": name, "floor": floor, "current": metrics[name]}
             for name, floor in (floors if baseline else DEFAULT_FLOORS | floors).items()
             if name in metrics and _misses(name, metrics[name], floor)]
    cumulative = _cumulative(metrics, per_question, reference, reference_questions or {}, alpha, max_cumulative_drop)
    return {"regressed": bool(drops or below or cumulative["declined"]),
            "baseline_run_id": (baseline or {}).get("_run_id"), "alpha": alpha, "tests": tests, "drops": drops,
            "below_floor": below, "cumulative": cumulative,
            "questions": changed_questions(per_question, baseline_questions) if baseline else []}


def _misses(name: str, value: float, floor: float) -> bool:
    """A floor on a metric where lower is better is a ceiling."""
    metric = BY_NAME.get(name)
    return value > floor if metric is not None and not metric.higher_is_better else value < floor


def _tests(metrics: dict, per_question: dict[str, dict], baseline: dict, baseline_questions: dict[str, dict],
           alpha: float) -> list[dict]:
    tests = []
    for metric in PAIRED:
        pairs = [(baseline_questions[q][metric.key], s[metric.key]) for q, s in per_question.items()
                 if s.get(metric.key) is not None and baseline_questions.get(q, {}).get(metric.key) is not None]
        if pairs:
            result = paired_test(metric, [w for w, _ in pairs], [n for _, n in pairs])
            tests.append({"metric": metric.name, "previous": baseline.get(metric.name),
                          "current": metrics.get(metric.name)} | result)
    _gatekeep(tests, alpha)
    return tests


def _cumulative(metrics: dict, per_question: dict[str, dict], reference: dict | None,
                reference_questions: dict[str, dict], alpha: float, max_drop: float) -> dict:
    """The decline since the long-term reference: beyond `max_drop` on a metric's mean, or significant."""
    if not reference:
        return {"reference_run_id": None, "declined": False, "max_drop": max_drop, "declines": []}
    declines = []
    for t in _tests(metrics, per_question, reference, reference_questions, alpha):
        was, now = t["previous"], t["current"]
        drop = None if was is None or now is None else (
            (was - now) if BY_NAME[t["metric"]].higher_is_better else (now - was))
        if t["regressed"] or (drop is not None and drop > max_drop + 1e-9):
            declines.append({"metric": t["metric"], "reference": was, "current": now, "lost": t["lost"],
                             "gained": t["gained"], "p": t["p"], "drop": None if drop is None else round(drop, 4),
                             "significant": t["regressed"]})
    return {"reference_run_id": reference.get("_run_id"), "declined": bool(declines), "max_drop": max_drop,
            "declines": declines}


def _gatekeep(tests: list[dict], alpha: float) -> None:
    """The primary metric at the full alpha, then Holm's step-down over the others at alpha among themselves."""
    primary = [t for t in tests if t["metric"] == PRIMARY]
    for t in primary:
        t["primary"], t["threshold"], t["regressed"] = True, alpha, t["p"] <= alpha
    _holm([t for t in tests if t["metric"] != PRIMARY], alpha)


def _holm(tests: list[dict], alpha: float) -> None:
    """Holm's step-down correction over the metrics: marks each test `regressed` or not."""
    for t in tests:
        t["primary"], t["regressed"] = False, False
    ranked = sorted(tests, key=lambda t: t["p"])
    for rank, t in enumerate(ranked):
        t["threshold"] = round(alpha / (len(tests) - rank), 6)
    for t in ranked:
        if t["p"] > t["threshold"]:
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
