"""Reranking latency: what a cross-encoder adds per query for the top 20 passages, on this machine; prints JSON.

The passages are ragops' own: the docs/ corpus chunked as a refresh does, grown to about 1,000 characters (what
expansion gives a passage), 20 per query; the queries are the bundled test set's questions. Each configuration
(precision x max_length) scores every query once after a warm-up, in interleaved rounds so that a noisy neighbour
hurts every configuration alike; p50 and p95 of the per-query time are reported, with the query embedding's
time (one short text) as the yardstick that retrieval already pays.

    .venv/bin/python bench/rerank.py [--model PATH_OR_NAME (default: a cross-encoder on the packaged MiniLM)]
        [--home DIR, to resolve trained:reranker/<n>] [--queries 12] [--depth 20] [--lengths 128,256]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def passages(limit: int) -> list[str]:
    from ragops.ingest.chunking import chunk_document
    from ragops.ingest.embedding import Embedder
    from ragops.ingest.parsing import parse

    counter = Embedder("all-MiniLM-L6-v2", precision="float32")
    texts: list[str] = []
    for path in sorted((REPO / "docs").glob("*.md")):
        parsed = parse(path.read_text(encoding="utf-8"), path.as_uri())
        chunks = [c.text for c in chunk_document(parsed, path.as_uri(), 128, counter.count_tokens)]
        for i in range(0, len(chunks), 2):  # two chunks: about the 1,000 characters expansion grows a passage to
            texts.append("\n\n".join(chunks[i : i + 2])[:1000])
    return texts[:limit]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", help="a CrossEncoder path or name, or trained:reranker/<n> with --home")
    parser.add_argument("--home", help="RAGOPS_HOME whose trained models --model may name")
    parser.add_argument("--queries", type=int, default=12)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--lengths", default="128,256")
    parser.add_argument("--precisions", default="float32,bfloat16")
    args = parser.parse_args()

    from ragops.config import Settings
    from ragops.evaluation.testset import load_testset
    from ragops.ingest.embedding import Embedder
    from ragops.models.rerank import CrossEncoderReranker, reranker_for

    work = tempfile.TemporaryDirectory(prefix="ragops-bench-rerank-")
    model = args.model
    if not model:  # no trained model given: the packaged MiniLM's encoder with a new head (same cost as a trained one)
        from ragops.ingest.embedding import resolve_model_path
        from ragops.training.models import train_reranker

        model = str(Path(work.name) / "ce")
        train_reranker(resolve_model_path("all-MiniLM-L6-v2"), [], Path(model), max_seconds=0)
    questions = [q.question for q in load_testset(None).items][: args.queries]
    texts = passages(args.depth * 4)
    settings = Settings(home=Path(args.home or work.name))
    configs = [(p, int(n)) for p in args.precisions.split(",") for n in args.lengths.split(",")]
    rerankers = {}
    for precision, length in configs:
        base = reranker_for(settings, model, precision)
        rerankers[(precision, length)] = CrossEncoderReranker(f"{model}@{length}", base.path, precision=precision,
                                                              max_length=length)
    times: dict[tuple, list[float]] = {c: [] for c in configs}
    embedder = Embedder("all-MiniLM-L6-v2", precision="auto")
    embed_times = []
    for reranker in rerankers.values():  # warm-up: load and run once
        reranker.score("warm up", texts[: args.depth])
    embedder.encode(["warm up"])
    for i, question in enumerate(questions):
        batch = texts[(i * 7) % (len(texts) - args.depth):][: args.depth]
        for config in configs:
            started = time.perf_counter()
            rerankers[config].score(question, batch)
            times[config].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        embedder.encode([question])
        embed_times.append((time.perf_counter() - started) * 1000)

    def stats(values: list[float]) -> dict:
        ordered = sorted(values)
        return {"p50_ms": round(statistics.median(ordered), 1),
                "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1)}

    print(json.dumps({"model": model, "queries": len(questions), "passages_per_query": args.depth,
                      "passage_chars": round(statistics.mean(len(t) for t in texts)),
                      "query_embedding": stats(embed_times),
                      "rerank": [{"precision": p, "max_length": n} | stats(times[(p, n)]) for p, n in configs],
                      "target_p50_ms": 40}, indent=2))
    work.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
