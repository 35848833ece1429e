"""Compare a run with the previous run on the same test set and with configured floors."""

from __future__ import annotations

HEADLINE = ("answer_token_recall", "hit_rate", "doc_mrr", "context_mrr", "doc_hit@5", "context_hit@5",
            "abstention_near", "abstention_far")  # higher is better
LOWER_IS_BETTER = ("false_abstention",)  # answerable questions refused with no_results


def compare(metrics: dict, per_question: dict[str, dict], previous: dict | None, previous_questions: dict[str, dict],
            floors: dict[str, float], tolerance: float) -> dict:
    """Regressed when a headline metric drops more than `tolerance` below the previous run or any floor is missed."""
    drops, below, questions = [], [], []
    if previous:
        for name in HEADLINE:
            if name in metrics and name in previous and metrics[name] < previous[name] - tolerance:
                drops.append({"metric": name, "previous": previous[name], "current": metrics[name],
                              "delta": round(metrics[name] - previous[name], 4)})
        for name in LOWER_IS_BETTER:
            if name in metrics and name in previous and metrics[name] > previous[name] + tolerance:
                drops.append({"metric": name, "previous": previous[name], "current": metrics[name],
                              "delta": round(metrics[name] - previous[name], 4)})
        for qid, now in per_question.items():
            was = previous_questions.get(qid)
            if not was:
                continue
            lost_hit = was.get("hit", 0) == 1 and now.get("hit", 0) == 0
            lost_hit = lost_hit or (was.get("refused", 0) == 1 and now.get("refused", 1) == 0)  # now answers it wrongly
            lost_doc = was.get("doc_mrr", 0) > 0 and now.get("doc_mrr", 0) == 0
            recall_drop = was.get("answer_token_recall", 0) - now.get("answer_token_recall", 0)
            if lost_hit or lost_doc or recall_drop >= 0.25:
                questions.append({"id": qid, "question": now.get("_question", ""),
                                  "was": round(was.get("answer_token_recall", 0), 3),
                                  "now": round(now.get("answer_token_recall", 0), 3),
                                  "lost_doc": lost_doc, "lost_hit": lost_hit})
    for name, floor in floors.items():
        if name in metrics and metrics[name] < floor:
            below.append({"metric": name, "floor": floor, "current": metrics[name]})
    questions.sort(key=lambda q: q["now"] - q["was"])
    return {"regressed": bool(drops or below), "drops": drops, "below_floor": below, "questions": questions,
            "previous_run_id": (previous or {}).get("_run_id")}
