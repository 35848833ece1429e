"""Ingest benchmark on the shared RHDH docs; prints one JSON document.

Measures, in one process: a full index from scratch; the same chunks through a bare
SentenceTransformer.encode (the floor); their ratio (target <= 1.25); a refresh after appending one paragraph
to 1% of the documents (target <= 10% of the full ingest, and exactly the changed chunks embedded); peak RSS.

    .venv/bin/python bench/ingest.py [--docs $RAGOPS_EVAL_RHDH/docs]

With `--compare`, one run times a full ingest of the same corpus from an empty home under each configuration:
"before" (float32, chunks of the model's 256 tokens, 64 texts per forward pass: the defaults before issue 12),
"float32" (today's chunking and batch size at float32) and "after" (the defaults), each with its model loaded
(once per precision in the process) and warmed before the clock starts. One-time process costs (imports, Great Expectations' context) are paid
by a warm-up ingest of one small document first, so they do not fall on whichever configuration runs first.

With `--chunking 128,256` (issue 19), the same harness times a full ingest at each chunk size, all else the
defaults, in `--rounds` rounds whose order alternates (128, 256, then 256, 128, ...), so a load that drifts during
the run falls on both sizes alike.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _rhdh import RHDH, absent


CONFIGS = {"before": {"embedding_precision": "float32", "chunk_max_tokens": None, "embed_batch_size": 64},
           "float32": {"embedding_precision": "float32"},
           "after": {}}


def compare(docs: Path, work: Path, configs: dict[str, dict] = CONFIGS, rounds: int = 1) -> dict:
    from ragops.config import Settings
    from ragops.ingest.embedding import Embedder
    from ragops.ingest.refresh import Refresher

    out: dict = {"configs": {}}
    warm = work / "warm-up-docs"
    warm.mkdir()
    sample = "\n\n".join(f"Paragraph {i} of the warm-up document, about refreshing the index." for i in range(40))
    (warm / "one.md").write_text("# Warm-up\n\n" + sample, encoding="utf-8")
    Refresher(Settings(home=work / "warm-up", source=warm.as_uri())).run()
    for r in range(rounds):
        for name in list(configs) if r % 2 == 0 else list(configs)[::-1]:
            overrides = configs[name]
            settings = Settings(home=work / f"{name}-{r}", source=docs.as_uri()).model_copy(update=overrides)
            embedder = Embedder.from_settings(settings)
            embedder.encode(["warm up the model"] * 8)
            started = time.perf_counter()
            report = Refresher(settings, embedder=embedder).run()
            seconds = round(time.perf_counter() - started, 2)
            row = out["configs"].setdefault(name, {
                "settings": overrides, "precision": embedder.precision,
                "chunk_max_tokens": settings.chunk_max_tokens or embedder.max_tokens,
                "chunks": report.chunks["embedded"], "rounds_s": []})
            row["rounds_s"].append(seconds)
            row["full_ingest_s"] = round(min(row["rounds_s"]), 2)  # the least disturbed round
    seconds = {n: c["full_ingest_s"] for n, c in out["configs"].items()}
    if configs is not CONFIGS:
        first = next(iter(seconds))
        out["summary"] = {f"{n}_over_{first}": round(s / seconds[first], 3) for n, s in seconds.items() if n != first}
        return out
    out["summary"] = {"before_over_after": round(seconds["before"] / seconds["after"], 3),
                      "float32_over_after_same_chunking": round(seconds["float32"] / seconds["after"], 3),
                      "target_before_over_after": 2.0}
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", default=str(RHDH / "docs"))
    parser.add_argument("--compare", action="store_true", help="full ingest before/after, side by side")
    parser.add_argument("--chunking", help="full ingest at these chunk sizes, e.g. 128,256 (all else the defaults)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of --compare or --chunking, order alternating")
    args = parser.parse_args()
    docs = Path(args.docs)
    if not docs.exists():
        print(json.dumps({"skipped": absent(docs)}))
        return 0
    if args.compare or args.chunking:
        configs = ({size: {"chunk_max_tokens": int(size)} for size in args.chunking.split(",")} if args.chunking
                   else CONFIGS)
        work = Path(tempfile.mkdtemp(prefix="ragops-bench-"))
        try:
            print(json.dumps(compare(docs, work, configs, args.rounds), indent=2))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return 0

    from ragops.config import Settings
    from ragops.index import open_store
    from ragops.ingest.embedding import Embedder
    from ragops.ingest.refresh import Refresher

    work = Path(tempfile.mkdtemp(prefix="ragops-bench-"))
    try:
        corpus = work / "corpus"
        for guide in sorted(docs.iterdir()):  # a private copy, so the benchmark can edit documents
            (corpus / guide.name).mkdir(parents=True)
            shutil.copy(guide / "master.txt", corpus / guide.name / "master.txt")
        settings = Settings(home=work / "home", source=corpus.as_uri())
        embedder = Embedder.from_settings(settings)

        t = time.perf_counter()
        model = embedder.model
        model.encode(["warm up the model"] * 8)
        load_s = time.perf_counter() - t

        t = time.perf_counter()
        full = Refresher(settings, embedder=embedder).run()
        full_s = time.perf_counter() - t

        rows = open_store(settings).rows(["chunk_id", "text"])
        texts = [r["text"] for r in rows]
        t = time.perf_counter()
        model.encode(texts, batch_size=settings.embed_batch_size, normalize_embeddings=True, convert_to_numpy=True)
        floor_s = time.perf_counter() - t

        before = {r["chunk_id"] for r in rows}
        guides = sorted(corpus.iterdir())
        n_edit = max(1, math.ceil(0.01 * len(guides)))
        for guide in guides[:n_edit]:
            with open(guide / "master.txt", "a", encoding="utf-8") as f:
                f.write("\n\nAppendix: this paragraph was appended by the ingest benchmark to exercise incremental refresh.\n")
        t = time.perf_counter()
        incremental = Refresher(settings, embedder=embedder).run()
        incremental_s = time.perf_counter() - t
        after = open_store(settings).chunk_ids()
        new_chunks = len(after - before)

        print(json.dumps({
            "corpus": {"documents": len(guides), "bytes": sum(p.stat().st_size for p in corpus.rglob("*.txt")),
                       "chunks": len(texts)},
            "model_load_s": round(load_s, 2),
            "full_ingest_s": round(full_s, 2),
            "bare_encode_s": round(floor_s, 2),
            "ingest_over_encode": round(full_s / floor_s, 3),
            "target_ingest_over_encode": 1.25,
            "incremental": {
                "documents_edited": n_edit,
                "wall_s": round(incremental_s, 2),
                "share_of_full": round(incremental_s / full_s, 4),
                "target_share": 0.10,
                "chunks_embedded": incremental.chunks["embedded"],
                "chunks_changed_in_index": new_chunks,
                "exact": incremental.chunks["embedded"] == new_chunks,
            },
            "full_report": {"documents": full.documents, "chunks": full.chunks},
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
