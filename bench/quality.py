"""Retrieval quality and abstention on $RAGOPS_EVAL_RHDH (dev set); prints one JSON document.

In one run:
- the README's naive baselines, rebuilt exactly as it defines them: fixed 1,000-character chunks with 200 overlap,
  all-MiniLM-L6-v2 (float32), dense only, and hybrid = reciprocal rank fusion (k=60) of dense and Okapi BM25
  (k1=1.5, b=0.75) over the README's tokens;
- ragops' retrieval through its real path (Refresher -> LanceDB -> Retriever, the answer pipeline's settings);
- the same measures for every query-time setting of a small grid, chosen by k-fold cross-validation over the dev
  questions (per-fold choice and held-out figures), so a setting is never judged on the questions that chose it;
- abstention: the share of the unanswerable set (near / far from the domain) refused with `no_results`, and of
  the dev questions wrongly refused, through `AnswerService.ask`; and the abstention rule's weight and threshold
  fitted by cross-validation over dev + unanswerable, with held-out figures per fold.
Measures (ragops.evaluation.measures): answer-token recall of the reference answer in the first 4,000 characters
of the results (20 per question, in rank order, the last one cut), hit = recall >= 0.8.

    .venv/bin/python bench/quality.py [--home DIR (kept; reused when indexed)] [--folds 5] [--precisions float32,bfloat16]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _rhdh import RHDH, absent

README_BASELINES = {"dense": {"answer_token_recall": 0.752, "hit_rate": 0.564},
                    "hybrid_rrf60": {"answer_token_recall": 0.800, "hit_rate": 0.643}}
K = 20
GRID = {"dense_weight": [(0.3, 0.7), (0.5, 0.5), (0.7, 0.3)], "expand_chars": [0, 1000, 1500, 2000], "dedupe": [False, True]}


def measure(dev: list[dict], contexts: list[list[str]]) -> tuple[np.ndarray, dict]:
    from ragops.evaluation.measures import HIT_RECALL, context_until, token_recall

    recall = np.array([token_recall(q["reference_answer"], context_until(c)) for q, c in zip(dev, contexts)])
    return recall, summary(recall, HIT_RECALL)


def summary(recall: np.ndarray, hit: float = 0.8) -> dict:
    return {"answer_token_recall": round(float(recall.mean()), 3), "hit_rate": round(float((recall >= hit).mean()), 3)}


def folds_of(n: int, k: int, seed: int = 12) -> list[np.ndarray]:
    return np.array_split(np.random.default_rng(seed).permutation(n), k)


# -- the README's baselines ----------------------------------------------------------------------------------
def baselines(docs: Path, dev: list[dict], embed) -> dict:
    from ragops.evaluation.measures import tokens

    chunks = []
    for path in sorted(docs.glob("*/master.txt")):
        text = path.read_text(encoding="utf-8")
        start = 0
        while start < len(text):
            chunks.append(text[start : start + 1000])
            if start + 1000 >= len(text):
                break
            start += 800
    vectors = embed(chunks)
    queries = embed([q["question"] for q in dev])
    docs_tokens = [tokens(c) for c in chunks]
    n, avg = len(docs_tokens), sum(map(len, docs_tokens)) / len(docs_tokens)
    df = collections.Counter(t for d in docs_tokens for t in set(d))
    idf = {t: math.log((n - m + 0.5) / (m + 0.5) + 1) for t, m in df.items()}
    postings = collections.defaultdict(list)
    for i, d in enumerate(docs_tokens):
        for t, f in collections.Counter(d).items():
            postings[t].append((i, f, len(d)))
    dense_ctx, hybrid_ctx = [], []
    for q, v in zip(dev, queries):
        bm25 = np.zeros(n)
        for t in sorted(set(tokens(q["question"]))):  # a fixed order: float sums, hence ties, are reproducible
            for i, f, length in postings.get(t, []):
                bm25[i] += idf[t] * f * 2.5 / (f + 1.5 * (0.25 + 0.75 * length / avg))
        dense = np.argsort(-(vectors @ v), kind="stable")
        sparse = np.argsort(-bm25, kind="stable")
        fused = collections.defaultdict(float)
        for ranking in (sparse, dense):  # ties in the fused score keep this insertion order, as the README's run did
            for rank, i in enumerate(ranking, start=1):
                fused[i] += 1 / (60 + rank)
        dense_ctx.append([chunks[i] for i in dense[:K]])
        hybrid_ctx.append([chunks[i] for i in sorted(fused, key=lambda i: -fused[i])[:K]])
    return {"chunks": len(chunks), "dense": measure(dev, dense_ctx)[1], "hybrid_rrf60": measure(dev, hybrid_ctx)[1],
            "readme": README_BASELINES}


# -- ragops ---------------------------------------------------------------------------------------------------
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


def abstention_end_to_end(service, dev: list[dict], unanswerable: list[dict]) -> dict:
    """What users get: the fallback of `AnswerService.ask` for every question."""
    async def run(questions):
        return [await service.ask(q, "quality-bench") for q in questions]

    dev_results = asyncio.run(run([q["question"] for q in dev]))
    un_results = asyncio.run(run([q["question"] for q in unanswerable]))
    out = {"dev_wrongly_refused": round(np.mean([r.fallback == "no_results" for r in dev_results]), 3)}
    for category in ("near", "far"):
        picked = [r for r, q in zip(un_results, unanswerable) if q["category"] == category]
        out[f"{category}_refused"] = round(np.mean([r.fallback == "no_results" for r in picked]), 3)
        out[f"{category}_n"] = len(picked)
    out["answered_unanswerable"] = [q["id"] for r, q in zip(un_results, unanswerable) if r.fallback != "no_results"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", help="RAGOPS_HOME to index into and keep (reused when already indexed)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--unanswerable", help="JSONL of unanswerable questions (default: the bundled set)")
    parser.add_argument("--precisions", default="", help="also compare these embedding precisions, e.g. float32")
    args = parser.parse_args()
    if not (RHDH / "dev.jsonl").exists():
        print(json.dumps({"skipped": absent(RHDH)}))
        return 0
    from ragops.answer.abstention import AbstentionPolicy
    from ragops.answer.pipeline import DEFAULTS, AnswerService
    from ragops.config import Settings
    from ragops.evaluation.abstention import load_unanswerable
    from ragops.ingest.embedding import EmbeddingCache, Embedder
    from ragops.ingest.refresh import Refresher
    from ragops.registry import Registry

    dev = [json.loads(line) for line in (RHDH / "dev.jsonl").read_text().splitlines() if line.strip()]
    unanswerable = [vars(q) for q in load_unanswerable(args.unanswerable).items]
    work = Path(tempfile.mkdtemp(prefix="ragops-bench-quality-"))
    result: dict = {"questions": len(dev), "k": K, "context_chars": 4000}
    try:
        home = Path(args.home) if args.home else work / "home"
        settings = Settings(home=home, source=(RHDH / "docs").as_uri())
        settings.ensure_home()
        registry = Registry(settings.registry_url)
        plain = Embedder(settings.embedding_model, settings.embed_batch_size, "float32")
        cache = EmbeddingCache(registry, plain.cache_key)

        def embed(texts: list[str]) -> np.ndarray:
            import hashlib

            hashes = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
            missing = cache.missing(hashes)
            by_hash = dict(zip(hashes, texts))
            if missing:
                cache.put_many(dict(zip(missing, plain.encode([by_hash[h] for h in missing]))))
            found = cache.get_many(hashes)
            return np.stack([found[h] for h in hashes])

        started = time.perf_counter()
        result["baselines"] = baselines(RHDH / "docs", dev, embed)
        result["baselines"]["seconds"] = round(time.perf_counter() - started, 1)

        started = time.perf_counter()
        report = Refresher(settings, registry=registry).run()
        result["index"] = {"chunks": report.chunks, "seconds": round(time.perf_counter() - started, 1),
                           "chunk_max_tokens": settings.chunk_max_tokens, "precision": settings.embedding_precision}
        service = AnswerService(settings, registry)
        _, live = service.rollout()
        retriever = service.retriever(live)
        policy = AbstentionPolicy.from_config(DEFAULTS)

        contexts = [[h.text for h in retriever.retrieve(q["question"], K, config=DEFAULTS).hits] for q in dev]
        result["ragops"] = measure(dev, contexts)[1] | {"config": {k: v for k, v in DEFAULTS.items() if k != "k"}}

        per_setting = {}
        for (dw, bw) in GRID["dense_weight"]:
            for chars in GRID["expand_chars"]:
                for dedupe in GRID["dedupe"]:
                    config = DEFAULTS | {"dense_weight": dw, "bm25_weight": bw, "expand_chars": chars, "dedupe": dedupe}
                    name = f"dense {dw} / bm25 {bw}, expand {chars}, dedupe {dedupe}"
                    per_setting[name] = measure(dev, [[h.text for h in retriever.retrieve(q["question"], K,
                                                                                          config=config).hits]
                                                      for q in dev])[0]
        result["query_settings"] = {name: summary(r) for name, r in per_setting.items()}
        result["cross_validation"] = cross_validate(per_setting, folds_of(len(dev), args.folds))

        dev_evidence = [retriever.retrieve(q["question"], 5, config=DEFAULTS, policy=policy).evidence for q in dev]
        un_evidence = [retriever.retrieve(q["question"], 5, config=DEFAULTS, policy=policy).evidence
                       for q in unanswerable]
        result["abstention"] = {
            "policy": vars(policy),
            "end_to_end": abstention_end_to_end(service, dev, unanswerable),
            "cross_validation": fit_abstention(dev_evidence, un_evidence, [q["category"] for q in unanswerable],
                                               args.folds),
        }
        for precision in filter(None, args.precisions.split(",")):
            from ragops.ingest.candidate import build_candidate

            started = time.perf_counter()
            build = build_candidate(settings, overrides={"embedding_precision": precision}, registry=registry)
            other = AnswerService(settings.model_copy(update={"embedding_precision": precision}), registry)
            candidate = other.retriever(build.index_version_id)
            contexts = [[h.text for h in candidate.retrieve(q["question"], K, config=DEFAULTS).hits] for q in dev]
            result.setdefault("precisions", {})[precision] = measure(dev, contexts)[1] | {
                "build_s": round(time.perf_counter() - started, 1)}
        print(json.dumps(result, indent=2, default=str))
    finally:
        if not args.home:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
