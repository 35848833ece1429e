"""Paired, per-question comparison with the baseline run: fair on 12 questions and on 500."""

import numpy as np

from ragops.evaluation.compare import PAIRED, PairedMetric, compare


def run(hits: list[int], recall: list[float] | None = None) -> tuple[dict, dict]:
    recall = recall if recall is not None else [0.9 if h else 0.4 for h in hits]
    questions = {f"q{i}": {"hit": float(h), "answer_token_recall": r, "_question": f"question {i}?"}
                 for i, (h, r) in enumerate(zip(hits, recall))}
    metrics = {"hit_rate": float(np.mean(hits)), "answer_token_recall": float(np.mean(recall))}
    return metrics, questions


def test_one_question_of_twelve_is_not_a_regression_but_is_named():
    # The old fixed tolerance (0.03) flagged this: one question of 12 moves the hit rate by 0.083.
    base_m, base_q = run([1] * 12)
    now_m, now_q = run([1] * 11 + [0])
    result = compare(now_m, now_q, base_m | {"_run_id": 3}, base_q, {}, 0.05)
    assert not result["regressed"] and result["baseline_run_id"] == 3
    assert [q["id"] for q in result["questions"]] == ["q11"] and result["questions"][0]["worse"]
    hit = next(t for t in result["tests"] if t["metric"] == "hit_rate")
    assert (hit["lost"], hit["gained"]) == (1, 0) and hit["p"] == 0.5


def test_a_real_regression_on_500_questions_is_caught_even_when_the_mean_moves_little():
    rng = np.random.default_rng(0)
    hits = (rng.random(500) < 0.7).astype(int)
    base_m, base_q = run(list(hits))
    worse = hits.copy()
    worse[np.flatnonzero(hits)[:12]] = 0  # 12 questions lost, none gained: -0.024 on the hit rate
    now_m, now_q = run(list(worse))
    assert base_m["hit_rate"] - now_m["hit_rate"] < 0.03  # inside the old fixed tolerance
    result = compare(now_m, now_q, base_m | {"_run_id": 1}, base_q, {}, 0.05)
    assert result["regressed"] and {d["metric"] for d in result["drops"]} >= {"hit_rate"}
    assert len([q for q in result["questions"] if q["worse"]]) == 12


def test_churn_that_cancels_out_is_not_a_regression():
    base_m, base_q = run([1, 0] * 50)
    now_m, now_q = run([0, 1] * 50)  # every question flipped, as many gained as lost
    result = compare(now_m, now_q, base_m, base_q, {}, 0.05)
    assert not result["regressed"] and len(result["questions"]) == 100


def test_graded_scores_use_a_signed_rank_test():
    base_m, base_q = run([1] * 30, [0.95] * 30)
    now_m, now_q = run([1] * 30, [0.95] * 10 + [0.82] * 20)  # recall drops on 20 questions, hits unchanged
    result = compare(now_m, now_q, base_m, base_q, {}, 0.05)
    recall = next(t for t in result["tests"] if t["metric"] == "answer_token_recall")
    assert recall["lost"] == 20 and recall["regressed"] and result["regressed"]


def test_floors_apply_without_a_baseline():
    result = compare({"hit_rate": 0.4}, {}, None, {}, {"hit_rate": 0.5}, 0.05)
    assert result["regressed"] and result["below_floor"][0]["metric"] == "hit_rate" and result["tests"] == []


def test_a_metric_where_a_drop_is_a_regression_slots_in(monkeypatch):
    """The abstention rate on unanswerable questions (issue 12) is one more PairedMetric."""
    monkeypatch.setattr("ragops.evaluation.compare.PAIRED", PAIRED + [PairedMetric("abstention_rate", "abstained", "binary")])
    base = {f"u{i}": {"abstained": 1.0} for i in range(20)}
    now = {f"u{i}": {"abstained": 0.0 if i < 8 else 1.0} for i in range(20)}
    result = compare({"abstention_rate": 0.6}, now, {"abstention_rate": 1.0}, base, {}, 0.05)
    assert result["regressed"] and result["drops"][0]["metric"] == "abstention_rate"
