"""Search at scale on the LanceDB backend: dense, BM25 and hybrid at 100,000 or 1,000,000 chunks; prints one JSON.

The corpus is synthetic; the real embedder (all-MiniLM-L6-v2, offline) embeds a sample only: `--seeds` paragraphs
of docs/*.md and the queries (the bundled test sets' questions, then first sentences of other paragraphs). Each
synthetic document (10 chunks) takes a seed paragraph: its direction is the seed's vector plus noise, each chunk's
vector that direction plus less noise, so chunks of one document are close and every chunk sits near real content.
A chunk's text is 8 words of its seed and 24 words of a Zipf-distributed synthetic vocabulary, so BM25 meets a real
vocabulary and a long tail of frequent filler.

Per mode: the store's own build (write plus full-text and vector index), disk, p50/p99 at concurrency 1 and 8 on
one pinned reader, recall@10 against an exact search of the same vectors (numpy, over every vector; hybrid: the
same fusion of the exact dense list and the BM25 list), the cost of a refresh that replaces 0.1% of the documents,
and the refresh planner's cost with 10 changed documents of 10,000 and of 100,000, and 1,000 of 100,000: from a
full listing and from the source's change feed.

    nice -n 10 .venv/bin/python bench/scale.py --chunks 100000 [--queries 200] [--home DIR]
    nice -n 10 .venv/bin/python bench/scale.py --planner-only [--planner-files 100000]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CHUNKS_PER_DOC = 10
BATCH = 20_000
K = 10
KNOBS = [(20, 10), (20, 40), (40, 40), (80, 80)]  # (nprobes, refine_factor) also measured at concurrency 1
log = logging.getLogger("bench.scale")


def paragraphs(limit: int) -> list[str]:
    found = []
    for path in sorted((REPO / "docs").glob("*.md")):
        for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
            text = " ".join(block.split())
            if len(text) >= 80 and not text.startswith(("|", "```", "#")):
                found.append(text[:600])
    rng = np.random.default_rng(1)
    return [found[i] for i in rng.permutation(len(found))[:limit]]


def questions(limit: int, spare: list[str]) -> list[str]:
    found = []
    for name in ("ragops_docs.jsonl", "unanswerable.jsonl"):
        path = REPO / "include/ragops/evaluation/testsets" / name
        found += [json.loads(line)["question"] for line in path.read_text().splitlines() if line.strip()]
    found += [p.split(". ")[0] for p in spare]
    return found[:limit]


class Corpus:
    """Deterministic synthetic chunks around real seed vectors, produced batch by batch."""

    def __init__(self, seeds: list[str], seed_vectors: np.ndarray, chunks: int, seed: int = 7):
        self.seeds, self.seed_vectors, self.chunks, self.seed = seeds, seed_vectors, chunks, seed
        self.seed_words = [re.findall(r"[A-Za-z][A-Za-z0-9_-]+", s.lower()) or ["empty"] for s in seeds]
        ranks = np.arange(1, 30_001)
        self.zipf = (1 / ranks) / (1 / ranks).sum()

    def documents(self, first: int, count: int, generation: int = 0) -> list:
        from ragops.index import IndexedChunk

        rng = np.random.default_rng([self.seed, first, generation])
        dim = self.seed_vectors.shape[1]
        out = []
        for doc in range(first, first + count):
            s = int(rng.integers(len(self.seeds)))
            direction = self.seed_vectors[s] + 0.6 * _unit(rng.normal(size=dim))
            noise = _unit(rng.normal(size=(CHUNKS_PER_DOC, dim)))
            vectors = _unit(_unit(direction)[None, :] + 0.35 * noise).astype(np.float32)
            filler = rng.choice(30_000, size=(CHUNKS_PER_DOC, 24), p=self.zipf)
            for c in range(CHUNKS_PER_DOC):
                words = list(rng.choice(self.seed_words[s], 8)) + [f"w{w}" for w in filler[c]]
                rng.shuffle(words)
                cid = f"d{doc}-{c}"
                out.append(IndexedChunk(cid, f"file:///scale/{doc}.md", f"{cid}-g{generation}", c, "Heading",
                                        f"Document {doc}", " ".join(words), vectors[c]))
        return out

    def batches(self):
        docs, per = self.chunks // CHUNKS_PER_DOC, BATCH // CHUNKS_PER_DOC
        for first in range(0, docs, per):
            yield self.documents(first, min(per, docs - first))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


class ExactTop:
    """The exact dense top-`depth` of every query, merged batch by batch as the corpus is written."""

    def __init__(self, queries: np.ndarray, depth: int):
        self.queries, self.depth = queries, depth
        self.ids = [np.array([], dtype=object) for _ in queries]
        self.sims = [np.array([], dtype=np.float32) for _ in queries]

    def add(self, batch) -> list:
        matrix = np.stack([c.vector for c in batch])
        ids = np.array([c.chunk_id for c in batch], dtype=object)
        sims = self.queries @ matrix.T
        for q in range(len(self.queries)):
            # a batch may hold no more rows than the depth (the last one): then every row is a candidate
            top = (np.argpartition(-sims[q], self.depth)[:self.depth] if len(batch) > self.depth
                   else np.arange(len(batch)))
            all_sims, all_ids = np.concatenate([self.sims[q], sims[q][top]]), np.concatenate([self.ids[q], ids[top]])
            keep = np.argsort(-all_sims, kind="stable")[:self.depth]
            self.sims[q], self.ids[q] = all_sims[keep], all_ids[keep]
        return batch

    def rows(self, q: int) -> list[dict]:
        return [{"chunk_id": cid, "doc_uri": "", "text": "", "_distance": 1.0 - float(s)}
                for cid, s in zip(self.ids[q], self.sims[q])]


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2)


def timed(reader, texts, vectors, mode: str, concurrency: int, ann=None) -> tuple[dict, list]:
    def one(i):
        start = time.perf_counter()
        hits = reader.search(texts[i], vectors[i], K, mode, ann=ann)
        return (time.perf_counter() - start) * 1000, [h.chunk_id for h in hits]

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(len(texts))))
    wall = time.perf_counter() - start
    ms = [r[0] for r in results]
    return {"p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99), "qps": round(len(texts) / wall, 1)}, [r[1] for r in results]


def recall(found: list[list[str]], exact: list[list[str]]) -> float:
    from ragops.index.ann import recall_at_k

    return round(recall_at_k(found, exact), 4)


PLANNER_CASES = ((10_000, 10), (100_000, 10), (100_000, 1_000))


def planner_cost(work: Path | None = None) -> dict:
    """The plan from a full listing (every fingerprint compared) and from the change feed (the journal read from the
    cursor, then only the named documents compared), best of 3; neither reads a file (see `real_files`)."""
    from ragops.ingest.planner import plan_refresh
    from ragops.sources.feed import LocalJournal

    out: dict = {"full_listing": {}, "feed": {}, "feed_entries_read": {}, "plans_agree": True}
    folder = Path(tempfile.mkdtemp(prefix="ragops-feed-", dir=work))
    try:
        for docs, changed in PLANNER_CASES:
            key = f"{docs}_docs_{changed}_changed_ms"
            indexed = {f"file:///kb/{i}.md": f"{i:064x}" for i in range(docs)}
            moved = {f"file:///kb/{i}.md": "0" * 64 for i in range(changed)}
            listed = dict(indexed) | moved
            full = min(_seconds(lambda: plan_refresh(listed, indexed)) for _ in range(3))
            out["full_listing"][key] = round(full * 1000, 2)
            journal = LocalJournal(folder / key, None)  # written directly: the watcher's entries without a folder
            journal.folder.mkdir(parents=True)
            journal._start(0.0)
            journal._append([{"op": "put", "uri": u, "path": u[7:]} for u in indexed], 0.0)
            cursor = journal.head()
            journal._append([{"op": "put", "uri": u, "path": u[7:]} for u in moved], 1.0)

            def from_feed():
                changes = journal.changes(cursor)
                named = {u: listed[u] for u in changes.put}  # the documents it names, read and fingerprinted
                plan = plan_refresh(named, {u: indexed[u] for u in [*named, *changes.deleted] if u in indexed})
                plan.unchanged = docs - len(plan.added) - len(plan.changed) - len(plan.deleted)
                return plan, changes.entries

            best = min(_seconds(from_feed) for _ in range(3))
            out["feed"][key] = round(best * 1000, 2)
            plan, out["feed_entries_read"][key] = from_feed()
            out["plans_agree"] &= plan.counts() == plan_refresh(listed, indexed).counts()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


def real_files(files: int, changed: int, work: Path | None = None) -> dict:
    """On `files` real files: a full listing (list, read and fingerprint every one) against the feed (the watcher's
    scan, a stat per file, then the journal read and the `changed` documents read)."""
    from ragops.sources import Source
    from ragops.sources.feed import LocalJournal

    root = Path(tempfile.mkdtemp(prefix="ragops-files-", dir=work))
    try:
        for i in range(files):
            (root / f"{i // 1000}").mkdir(exist_ok=True)
            (root / f"{i // 1000}" / f"{i}.md").write_text(f"# Page {i}\n\nThe text of page {i}.\n")
        old = time.time() - 3600
        for path in root.rglob("*.md"):
            os.utime(path, (old, old))
        source = Source(root.as_uri())
        journal = LocalJournal(root.parent / (root.name + "-feed"), source)
        journal.scan()
        cursor = journal.head()
        start = time.perf_counter()
        listed = sum(1 for _ in source.documents())
        full_s = time.perf_counter() - start
        for i in range(changed):
            (root / f"{i // 1000}" / f"{i}.md").write_text(f"# Page {i}\n\nEdited.\n")
        scan_s = _seconds(journal.scan)
        start = time.perf_counter()
        changes = journal.changes(cursor)
        read = [source.read(p) for p in changes.put.values()]
        feed_s = time.perf_counter() - start
        return {"files": files, "changed": changed, "listed": listed, "read_from_feed": len(read),
                "full_listing_ms": round(full_s * 1000, 1), "scan_ms": round(scan_s * 1000, 1),
                "feed_read_ms": round(feed_s * 1000, 1)}
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(root.parent / (root.name + "-feed"), ignore_errors=True)


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def embedded(embedder, texts: list[str], cache: Path | None) -> np.ndarray:
    """The real embedder's vectors of `texts`, kept in `cache` (an .npz keyed by the texts) between runs."""
    import hashlib

    key = "v" + hashlib.sha256("\0".join(texts).encode()).hexdigest()[:16]
    if cache is not None and cache.exists():
        with np.load(cache) as held:
            if key in held:
                return held[key]
    vectors = embedder.encode(texts)
    if cache is not None:
        held = dict(np.load(cache)) if cache.exists() else {}
        np.savez(cache, **(held | {key: vectors}))
    return vectors


def run(chunks: int, n_queries: int, n_seeds: int, home: Path, cache: Path | None = None) -> dict:
    from ragops.config import Settings
    from ragops.index.ann import AnnKnob, AnnPolicy
    from ragops.index.fusion import depth, reciprocal_rank_fusion
    from ragops.index.lance import LanceStore
    from ragops.ingest.embedding import Embedder

    settings = Settings()
    embedder = Embedder.from_settings(settings)
    seeds = paragraphs(n_seeds)
    texts = questions(n_queries, paragraphs(n_seeds + n_queries)[n_seeds:])
    start = time.perf_counter()
    seed_vectors, query_vectors = embedded(embedder, seeds, cache), embedded(embedder, texts, cache)
    embed_s = time.perf_counter() - start
    corpus, exact = Corpus(seeds, seed_vectors, chunks), ExactTop(query_vectors, depth(K))

    policy = AnnPolicy.from_settings(settings)
    store = LanceStore(home, "scale", ann=policy)
    start = time.perf_counter()
    version = store.rebuild_from(exact.add(b) for b in corpus.batches())
    build_s = time.perf_counter() - start
    log.info("built %d chunks in %.0f s; searching", chunks, build_s)
    table_dir = home / "scale.lance"
    report = {"chunks": store.count(), "dim": int(seed_vectors.shape[1]), "queries": len(texts),
              "seeds_embedded": len(seeds), "real_embedding_s": round(embed_s, 1), "ann_policy": policy.__dict__,
              "build": {"seconds": round(build_s, 1), "vector_index": store.ann_report.to_dict()},
              "disk_mb": round(du(table_dir) / 2**20, 1), "modes": {}}

    reader = LanceStore(home, "scale", ann=policy)
    reader.checkout(version)
    exact_dense = [list(exact.ids[q][:K]) for q in range(len(texts))]
    exact_hybrid = [[h.chunk_id for h in reciprocal_rank_fusion(
        exact.rows(q), [{"chunk_id": h.chunk_id, "doc_uri": "", "text": "", "_score": h.score}
                        for h in reader.search(texts[q], None, depth(K), "bm25")], K)] for q in range(len(texts))]
    truth = {"dense": exact_dense, "hybrid": exact_hybrid}
    for mode in ("dense", "bm25", "hybrid"):
        row = {}
        for concurrency in (1, 8):
            row[f"c{concurrency}"], found = timed(reader, texts, query_vectors, mode, concurrency)
        # BM25 reads no vectors: exact by construction
        row["recall_at_10"] = recall(found, truth[mode]) if mode in truth else None
        report["modes"][mode] = row
    report["knob_sweep"] = []
    for nprobes, refine in KNOBS:
        row = {"nprobes": nprobes, "refine_factor": refine}
        for mode in ("dense", "hybrid"):
            figures, found = timed(reader, texts, query_vectors, mode, 1, AnnKnob(nprobes, refine))
            row[mode] = {"p50_ms": figures["p50_ms"], "p99_ms": figures["p99_ms"],
                         "recall_at_10": recall(found, truth[mode])}
        report["knob_sweep"].append(row)
    sample = min(20, len(texts))
    table = reader._tbl
    ms = [_seconds(lambda q=q: table.search(query_vectors[q]).distance_type("cosine").bypass_vector_index()
                   .select(["chunk_id", "_distance"]).limit(K).to_list()) * 1000 for q in range(sample)]
    report["exact_dense_scan"] = {"queries": sample, "p50_ms": pct(ms, 50)}

    log.info("searched; refreshing 0.1 percent of the documents")
    docs = chunks // CHUNKS_PER_DOC
    changed = max(1, docs // 1000)
    picked = np.random.default_rng(5).choice(docs, size=changed, replace=False)
    upserts = [c for d in picked for c in corpus.documents(int(d), 1, generation=1)]
    start = time.perf_counter()
    store.apply(upserts, sorted({c.doc_uri for c in upserts}), [])
    report["refresh_0.1pct"] = {"documents": changed, "chunks": len(upserts),
                                "seconds": round(time.perf_counter() - start, 2),
                                "vector_index": store.ann_report.to_dict()}
    report["planner"] = planner_cost()
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=500)
    parser.add_argument("--home", type=Path, help="where the table goes (default: a temporary folder, removed)")
    parser.add_argument("--vectors-cache", type=Path, help="an .npz that keeps the real embeddings between runs")
    parser.add_argument("--planner-only", action="store_true", help="measure only the refresh planner (and, with "
                        "--planner-files, the listing of real files)")
    parser.add_argument("--planner-files", type=int, default=0, help="real files for the listing measure (0: none)")
    args = parser.parse_args(argv)
    if args.planner_only:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        report = {"planner": planner_cost(args.home)}
        if args.planner_files:
            report["real_files"] = [real_files(args.planner_files, n, args.home) for n in (10, 1_000)]
        print(json.dumps(report, indent=2))
        return 0
    if not 1_000 <= args.chunks <= 5_000_000 or not 1 <= args.queries <= 2_000 or not 10 <= args.seeds <= 5_000:
        parser.error("--chunks 1,000..5,000,000, --queries 1..2,000, --seeds 10..5,000")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    home = args.home or Path(tempfile.mkdtemp(prefix="ragops-scale-"))
    try:
        print(json.dumps(run(args.chunks, args.queries, args.seeds, home, args.vectors_cache), indent=2))
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
