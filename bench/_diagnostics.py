"""The cross-validated diagnostics of bench/quality.py: reported beside the protocol's verdicts, deciding nothing.

Issue 12 chose its query knobs by k-fold cross-validation over the dev questions, and issue 19 showed that it
overfit; the grid stays as a diagnostic. The abstention rule's weight and threshold are fitted the same way, with
held-out figures per fold.
"""

from __future__ import annotations

import math

import numpy as np


def summary(recall: np.ndarray, hit: float = 0.8) -> dict:
    return {"answer_token_recall": round(float(recall.mean()), 3), "hit_rate": round(float((recall >= hit).mean()), 3)}


GRID = {"dense_weight": [(0.3, 0.7), (0.5, 0.5), (0.7, 0.3)], "expand_chars": [0, 1000, 1500, 2000], "dedupe": [False, True]}


def folds_of(n: int, k: int, seed: int = 12) -> list[np.ndarray]:
    return np.array_split(np.random.default_rng(seed).permutation(n), k)


def cross_validate(per_setting: dict[str, np.ndarray], folds: list[np.ndarray]) -> dict:
    """Choose the setting with the best recall + hit rate on k-1 folds; report it on the held-out fold."""
    held = np.zeros(len(next(iter(per_setting.values()))))
    rows = []
    for f, test in enumerate(folds):
        train = np.setdiff1d(np.arange(len(held)), test)
        best = max(per_setting, key=lambda s: per_setting[s][train].mean() + (per_setting[s][train] >= 0.8).mean())
        held[test] = per_setting[best][test]
        rows.append({"fold": f, "chosen": best, "train": summary(per_setting[best][train]),
                     "held_out": summary(per_setting[best][test])})
    return {"folds": rows, "pooled_held_out": summary(held)}


def fit_abstention(answerable: list, unanswerable: list, categories: list[str], folds_k: int) -> dict:
    """Grid over the similarity weight; the threshold is the highest that refuses at most 3% of answerable train."""
    from ragops.answer.abstention import AbstentionPolicy

    def fit(pos, neg):
        best = None
        for w in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0):
            scores = sorted(e.coverage + w * e.similarity for e in pos)
            threshold = scores[int(math.floor(0.03 * len(scores)))] if scores else 0.0
            refused = np.mean([e.coverage + w * e.similarity < threshold for e in neg]) if neg else 0.0
            if best is None or refused > best[0]:
                best = (refused, w, threshold)
        return AbstentionPolicy(sim_weight=best[1], threshold=round(best[2], 4))

    pos_folds, neg_folds = folds_of(len(answerable), folds_k), folds_of(len(unanswerable), folds_k, seed=7)
    rows = []
    refused_pos, refused_neg = np.zeros(len(answerable), bool), np.zeros(len(unanswerable), bool)
    for f in range(folds_k):
        tp, tn = set(pos_folds[f].tolist()), set(neg_folds[f].tolist())
        policy = fit([e for i, e in enumerate(answerable) if i not in tp],
                     [e for i, e in enumerate(unanswerable) if i not in tn])
        for i in tp:
            refused_pos[i] = not answerable[i].answerable(policy)
        for i in tn:
            refused_neg[i] = not unanswerable[i].answerable(policy)
        rows.append({"fold": f, "sim_weight": policy.sim_weight, "threshold": policy.threshold,
                     "held_out_dev_wrongly_refused": round(float(np.mean([refused_pos[i] for i in tp])), 3),
                     "held_out_unanswerable_refused": round(float(np.mean([refused_neg[i] for i in tn])), 3)})
    cats = np.array(categories)
    overall = fit(answerable, unanswerable)
    return {"folds": rows, "pooled_held_out": {
        "dev_wrongly_refused": round(float(refused_pos.mean()), 3),
        "near_refused": round(float(refused_neg[cats == "near"].mean()), 3),
        "far_refused": round(float(refused_neg[cats == "far"].mean()), 3)},
        "fit_on_all": {"sim_weight": overall.sim_weight, "threshold": overall.threshold}}


def knob_grid(recall_of, questions: int, defaults: dict, folds: int) -> dict:
    """The issue-12 grid and its cross-validation: it overfit (issue 19), so it is reported and decides nothing."""
    per_setting = {}
    for (dw, bw) in GRID["dense_weight"]:
        for chars in GRID["expand_chars"]:
            for dedupe in GRID["dedupe"]:
                config = defaults | {"dense_weight": dw, "bm25_weight": bw, "expand_chars": chars, "dedupe": dedupe}
                per_setting[f"dense {dw} / bm25 {bw}, expand {chars}, dedupe {dedupe}"] = recall_of(config)
    return {"label": "diagnostic, not used for decisions", "settings": len(per_setting),
            "query_settings": {name: summary(r) for name, r in per_setting.items()},
            "cross_validation": cross_validate(per_setting, folds_of(questions, folds))}
