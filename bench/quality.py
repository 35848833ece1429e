"""Retrieval quality and abstention on $RAGOPS_EVAL_RHDH (dev set), judged by a protocol; prints one JSON document.

The protocol (docs/benchmarks.md, "Evaluation protocol"; issue 19): a grid of knobs chosen on 140 questions overfit,
even under cross-validation, because the choice of knobs to try was made on those same questions. So:
- every variant is declared up front in VARIANTS, with what it changes and the reason it should generalise, a reason
  that does not come from the dev questions;
- each one is compared with the current default over the same dev questions, paired, with a bootstrap 95% interval
  of the difference in hit rate (primary) and answer-token recall (ragops.evaluation.paired);
- it is adopted only when the hit-rate interval, Bonferroni-corrected over the variants tried in this run, lies
  above 0, recall is not significantly worse, and it has a reason. Every verdict is reported, adopted or not, with
  the number of variants tried (docs/benchmarks.md keeps the running total).

Also in one run: the README's naive baselines, rebuilt exactly as it defines them (fixed 1,000-character chunks with
200 overlap, all-MiniLM-L6-v2 float32, dense only, and hybrid = reciprocal rank fusion (k=60) of dense and Okapi BM25
(k1=1.5, b=0.75) over the README's tokens); ragops' default through its real path (Refresher -> LanceDB ->
Retriever, the answer pipeline's settings); abstention: the share of the unanswerable set (near / far from the
domain) refused with `no_results`, and of the dev questions wrongly refused, through `AnswerService.ask`, and the
abstention rule's weight and threshold fitted by cross-validation over dev + unanswerable.
With `--grid`, the old knob grid and its cross-validation, as a diagnostic that decides nothing.
Measures (ragops.evaluation.measures): answer-token recall of the reference answer in the first 4,000 characters
of the results (20 per question, in rank order, the last one cut), hit = recall >= 0.8.

    .venv/bin/python bench/quality.py [--home DIR (kept; reused when indexed)] [--variants a,b | --variants none]
        [--resamples 10000] [--folds 5] [--grid]
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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from _diagnostics import fit_abstention, knob_grid, summary
from _rhdh import RHDH, absent

README_BASELINES = {"dense": {"answer_token_recall": 0.752, "hit_rate": 0.564},
                    "hybrid_rrf60": {"answer_token_recall": 0.800, "hit_rate": 0.643}}
K = 20


@dataclass(frozen=True)
class Variant:
    """One change to judge against the default. `index`: Settings overrides, built into a candidate index
    (ragops.ingest.candidate); `query`: answer-config overrides on the pipeline's DEFAULTS, passed to
    `Retriever.retrieve` (RetrievalConfig knobs). `reason`: why it should hold on questions nobody has seen, from
    outside the dev questions (a model's training, the documents' structure, other evidence); empty = no reason,
    and then it is never adopted. `default_run`: tried when `--variants` is not given."""

    name: str
    reason: str
    index: dict = field(default_factory=dict)
    query: dict = field(default_factory=dict)
    default_run: bool = True


# One line per variant. Add a query-time one as Variant("pack-4000", "<reason>", query={"pack_chars": 4000}) or
# Variant("rerank-<name>", "<reason>", query={"rerank": "<model>"}); an index-time one as
# Variant("embed-<name>", "<reason>", index={"embedding_model": "<name or path>"}).
VARIANTS = [
    Variant("chunks-256", "all-MiniLM-L6-v2 was trained on 256-token windows, and a 256-token chunk keeps a "
            "procedure's steps and their heading together; on 361 unseen RHDH questions (issue 19) it scored "
            "0.623 hit against 0.596 for 128", index={"chunk_max_tokens": 256}),
    Variant("chunks-128", "smaller chunks let one vector stand for one idea (issue 12's reason; the size itself "
            "was chosen on the dev set)", index={"chunk_max_tokens": 128}),
    Variant("rerank-trained", "a cross-encoder reads the query and the passage together, which a bi-encoder "
            "cannot; it is trained on the corpus's own headings, titles and neighbours (no question), so nothing "
            "in it comes from the dev set", query={"rerank": "trained:reranker/latest"}, default_run=False),
    Variant("embed-adapted", "the embedding model adapted to this corpus's vocabulary by contrastive training on "
            "the corpus's own heading/section pairs (no question)", index={"embedding_model": "trained:embedder/latest"},
            default_run=False),
    Variant("float32-vectors", "a check, not a candidate: bfloat16 vectors are float32's to cosine 0.99996",
            index={"embedding_precision": "float32"}, default_run=False),
]
PRIMARY = "hit_rate"
FAMILY_CONFIDENCE = 0.95


def measure(dev: list[dict], contexts: list[list[str]]) -> tuple[np.ndarray, dict]:
    from ragops.evaluation.measures import HIT_RECALL, context_until, token_recall

    recall = np.array([token_recall(q["reference_answer"], context_until(c)) for q, c in zip(dev, contexts)])
    return recall, summary(recall, HIT_RECALL)


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


# -- the protocol -------------------------------------------------------------------------------------------
def check_variants(variants: list[Variant]) -> None:
    """Refuse a query knob the retriever does not read: it would measure the default and call it a variant."""
    from ragops.answer.passages import RetrievalConfig

    for v in variants:
        unknown = sorted(set(v.query) - set(RetrievalConfig.__dataclass_fields__))
        if unknown:
            sys.exit(f"variant {v.name}: {', '.join(unknown)} is not a RetrievalConfig knob (answer/passages.py), "
                     "so Retriever.retrieve would ignore it")


def is_default(v: Variant, settings, defaults: dict) -> bool:
    from ragops.answer.passages import RetrievalConfig

    query_now = vars(RetrievalConfig.from_config(defaults))
    return (all(getattr(settings, k) == value for k, value in v.index.items())
            and all(query_now.get(k) == value for k, value in v.query.items()))


def retrieval_recall(retriever, dev: list[dict], config: dict) -> np.ndarray:
    return measure(dev, [[h.text for h in retriever.retrieve(q["question"], K, config=config).hits] for q in dev])[0]


def verdict(hit, recall, reason: str) -> str:
    """`hit` and `recall` are the corrected paired differences (variant - default)."""
    if hit.high < 0:
        return "not adopted: significantly worse"
    if hit.low <= 0:
        return "not adopted: the hit-rate difference is within noise"
    if recall.high < 0:
        return "not adopted: recall significantly worse"
    if not reason.strip():
        return "not adopted: a significant gain, but no reason to expect it to generalise"
    return "adopt"


def judge(base: np.ndarray, runs: dict[str, np.ndarray], reasons: dict[str, str], resamples: int) -> dict:
    """Every variant against the default, paired over the same questions; the verdict reads intervals at the
    Bonferroni-corrected level for the variants tried in this run."""
    from ragops.evaluation.measures import HIT_RECALL
    from ragops.evaluation.paired import bonferroni, holm, paired_bootstrap

    corrected = bonferroni(FAMILY_CONFIDENCE, len(runs))
    out = {}
    for name, recall in runs.items():
        scores = {"hit_rate": (base >= HIT_RECALL, recall >= HIT_RECALL), "answer_token_recall": (base, recall)}
        row: dict = {"summary": summary(recall)}
        judged = {}
        for measure_name, (was, now) in scores.items():
            plain = paired_bootstrap(was, now, confidence=FAMILY_CONFIDENCE, resamples=resamples)
            judged[measure_name] = paired_bootstrap(was, now, confidence=corrected, resamples=resamples)
            row[measure_name] = plain.to_dict() | {
                "corrected": {"confidence": round(corrected, 4), "low": round(judged[measure_name].low, 4),
                              "high": round(judged[measure_name].high, 4)}}
        row["verdict"] = verdict(judged["hit_rate"], judged["answer_token_recall"], reasons[name])
        out[name] = row
    for name, p in zip(out, holm([out[n]["hit_rate"]["p_value"] for n in out])):
        out[name]["hit_rate"]["p_holm"] = round(p, 4)
    return out


# -- diagnostics ------------------------------------------------------------------------------------------------
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


def checked_home(home: Path, built_with: dict) -> None:
    """A reused --home must hold an index built with today's defaults, or "the default" would be another index
    (a refresh does not rebuild unchanged documents when a setting changes)."""
    marker = home / "quality-bench.json"
    if marker.exists():
        before = json.loads(marker.read_text())
        if before != built_with:
            sys.exit(f"{home} was indexed with {before}, the defaults are now {built_with}: use a fresh --home")
    marker.write_text(json.dumps(built_with))


def chosen_variants(parser: argparse.ArgumentParser, names: str | None) -> list[Variant]:
    by_name = {v.name: v for v in VARIANTS}
    if names is None:
        return [v for v in VARIANTS if v.default_run]
    if names == "none":
        return []
    unknown = [n for n in names.split(",") if n not in by_name]
    if unknown:
        parser.error(f"unknown variants {unknown}; VARIANTS has {sorted(by_name)}")
    return [by_name[n] for n in names.split(",")]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", help="RAGOPS_HOME to index into and keep (reused when already indexed)")
    parser.add_argument("--variants", help="comma-separated names from VARIANTS, or 'none' (default: those marked "
                        "default_run)")
    parser.add_argument("--resamples", type=int, default=10_000, help="bootstrap and permutation resamples")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--grid", action="store_true", help="also the old knob grid with cross-validation "
                        "(diagnostic, not used for decisions)")
    parser.add_argument("--unanswerable", help="JSONL of unanswerable questions (default: the bundled set)")
    args = parser.parse_args()
    chosen = chosen_variants(parser, args.variants)
    check_variants(chosen)
    if not (RHDH / "dev.jsonl").exists():
        print(json.dumps({"skipped": absent(RHDH)}))
        return 0
    from ragops.answer.abstention import AbstentionPolicy
    from ragops.answer.pipeline import DEFAULTS, AnswerService
    from ragops.config import Settings
    from ragops.evaluation.abstention import load_unanswerable
    from ragops.ingest.candidate import build_candidate
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
        checked_home(home, {k: getattr(settings, k) for k in ("embedding_model", "embedding_precision",
                                                               "chunk_max_tokens")})
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
        base = retrieval_recall(retriever, dev, DEFAULTS)
        result["ragops"] = summary(base) | {"config": {k: v for k, v in DEFAULTS.items() if k != "k"}}

        runs, skipped, builds, candidates = {}, {}, {}, {}
        for v in chosen:
            if is_default(v, settings, DEFAULTS):
                skipped[v.name] = "it is the default: nothing to compare"
                continue
            found = retriever
            if v.index:
                key = json.dumps(v.index, sort_keys=True)
                if key not in candidates:  # one candidate index per distinct set of index overrides
                    started = time.perf_counter()
                    build = build_candidate(settings, overrides=v.index, registry=registry)
                    other = AnswerService(settings.model_copy(update=v.index), registry)
                    candidates[key] = other.retriever(build.index_version_id)
                    builds[v.name] = {"chunks": build.n_chunks, "build_s": round(time.perf_counter() - started, 1)}
                found = candidates[key]
            runs[v.name] = retrieval_recall(found, dev, DEFAULTS | v.query)
        judged = judge(base, runs, {v.name: v.reason for v in chosen}, args.resamples)
        result["protocol"] = {
            "variants_tried": len(runs), "primary": PRIMARY, "paired_over": f"the {len(dev)} dev questions",
            "interval": f"percentile bootstrap over questions, {args.resamples} resamples, seeded",
            "correction": f"Bonferroni over the {len(runs)} variants tried: each verdict reads the interval at "
                          f"{round(1 - (1 - FAMILY_CONFIDENCE) / max(len(runs), 1), 4)}",
            "rule": "adopt only when the corrected hit-rate interval lies above 0, recall is not significantly "
                    "worse and the variant has a reason to generalise from outside the dev questions"}
        result["variants"] = {v.name: {"index": v.index, "query": v.query, "reason": v.reason}
                              | ({"skipped": skipped[v.name]} if v.name in skipped else judged[v.name])
                              | ({"build": builds[v.name]} if v.name in builds else {}) for v in chosen}
        print(f"variants tried in this run: {len(runs)} ("
              + ", ".join(f"{n}: {judged[n]['verdict']}" for n in runs) + ")", file=sys.stderr)
        if args.grid:
            result["diagnostic_not_used_for_decisions"] = knob_grid(
                lambda config: retrieval_recall(retriever, dev, config), len(dev), DEFAULTS, args.folds)

        dev_evidence = [retriever.retrieve(q["question"], 5, config=DEFAULTS, policy=policy).evidence for q in dev]
        un_evidence = [retriever.retrieve(q["question"], 5, config=DEFAULTS, policy=policy).evidence
                       for q in unanswerable]
        result["abstention"] = {
            "policy": vars(policy),
            "end_to_end": abstention_end_to_end(service, dev, unanswerable),
            "cross_validation": fit_abstention(dev_evidence, un_evidence, [q["category"] for q in unanswerable],
                                               args.folds),
        }
        print(json.dumps(result, indent=2, default=str))
    finally:
        if not args.home:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
