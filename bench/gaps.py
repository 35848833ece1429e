"""The cost of the content-gap analysis on 100,000 stored questions; prints one JSON document.

Stages, each timed on its own (docs/benchmarks.md has the figures and what they mean):
- read: `gaps.questions.failed_questions` over N refused questions stored in a SQLite registry (request_events),
  newest first, deduplicated per user;
- embed: `Embedder.encode` (the configured model and precision) on a sample of the questions, extrapolated
  linearly to N (embedding is per question; on this shared 2-core machine all N would take hours);
- cluster: `gaps.clusters.clusters` on N vectors: PCA to 16 dimensions, HDBSCAN, c-TF-IDF names. The N vectors are
  the sample's real embeddings, each repeated with Gaussian noise (sigma --noise) and renormalised, so the cloud
  has the sample's topics and a paraphrase-like spread; each vector keeps its question's text for the names. Memory
  is the process's peak RSS before and after the stage (the rise is what clustering added on top of the model).

Questions come from TOPICS x templates with random product names and numbers, so there are real topics to find.

    nice .venv/bin/python bench/gaps.py [--n 100000] [--sample 1000] [--noise 0.02]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

TOPICS = ["invoice", "billing address", "refund", "SAML single sign-on", "password reset", "API rate limit",
          "webhook retries", "data export", "audit log", "two-factor authentication", "team seats", "custom domain",
          "backup restore", "GDPR deletion", "Slack integration", "mobile app login", "usage quota", "dark mode",
          "CSV import", "region migration"]
TEMPLATES = ["How do I change the {t} for {p}?", "Why does the {t} fail on {p} after {n} tries?",
             "Where can I find the {t} settings of {p}?", "Is there a limit on {t} for {p}?",
             "Can I automate {t} in {p} with the API?", "What happens to {t} when {p} is cancelled?"]
PRODUCTS = [f"{a}-{b}" for a in ("acme", "nova", "orbit", "zen", "polar") for b in ("cloud", "suite", "pro", "lite")]


def questions(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(TEMPLATES).format(t=rng.choice(TOPICS), p=rng.choice(PRODUCTS), n=rng.randint(2, 99))
            for _ in range(n)]


def store(registry, texts: list[str], now: datetime) -> None:
    from sqlalchemy import insert

    from ragops.registry.models import RequestEvent

    rows = [{"ts": now - timedelta(seconds=i * 20), "request_id": f"r{i}", "endpoint": "/v1/ask",
             "user_hash": f"u{i % 5000}", "variant": "stable", "release_id": 1, "latency_ms": 40.0, "status": 200,
             "fallback": "no_results", "chunk_ids": [], "synthetic": False, "verified": True, "question": q}
            for i, q in enumerate(texts)]
    with registry.session() as s:
        for start in range(0, len(rows), 10_000):
            s.execute(insert(RequestEvent), rows[start:start + 10_000])


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=1_000, help="questions actually embedded")
    parser.add_argument("--noise", type=float, default=0.02, help="sigma of the noise around each sampled vector")
    parser.add_argument("--min-cluster-size", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    from ragops.config import Settings
    from ragops.gaps.clusters import clusters
    from ragops.gaps.questions import failed_questions
    from ragops.ingest.embedding import Embedder
    from ragops.registry import Registry

    out: dict = {"n": args.n, "sample": args.sample, "noise": args.noise, "min_cluster_size": args.min_cluster_size}
    texts = questions(args.n, args.seed)
    with tempfile.TemporaryDirectory(prefix="ragops-bench-gaps-") as home:
        registry = Registry(f"sqlite:///{Path(home) / 'registry.db'}")
        now = datetime.now(timezone.utc)
        store(registry, texts, now)
        started = time.perf_counter()
        found, capped = failed_questions(registry, now - timedelta(days=60), now + timedelta(minutes=1), args.n)
        out["read"] = {"seconds": round(time.perf_counter() - started, 2), "questions": len(found), "capped": capped,
                       "peak_rss_mb": peak_rss_mb()}
        registry.dispose()

    embedder = Embedder.from_settings(Settings())
    sample = [q.question for q in found[:args.sample]]
    embedder.encode(sample[:16])  # the model's load is not the per-question cost
    started = time.perf_counter()
    vectors = embedder.encode(sample)
    seconds = time.perf_counter() - started
    out["embed"] = {"model": embedder.model_name, "precision": embedder.precision, "batch_size": embedder.batch_size,
                    "sample_seconds": round(seconds, 2), "per_second": round(len(sample) / seconds, 1),
                    "extrapolated_seconds_for_n": round(args.n * seconds / len(sample), 1),
                    "peak_rss_mb": peak_rss_mb()}

    rng = np.random.default_rng(args.seed)
    picked = rng.integers(0, len(vectors), args.n)
    cloud = vectors[picked] + rng.normal(0, args.noise, (args.n, vectors.shape[1]))
    cloud = (cloud / np.linalg.norm(cloud, axis=1, keepdims=True)).astype(np.float32)
    names = [sample[i] for i in picked]
    before = peak_rss_mb()
    started = time.perf_counter()
    found_clusters = clusters(cloud, names, args.min_cluster_size)
    seconds = time.perf_counter() - started
    sizes = sorted((len(c.members) for c in found_clusters), reverse=True)
    out["cluster"] = {"seconds": round(seconds, 2), "peak_rss_before_mb": before,
                      "clusters": len(found_clusters), "clustered": sum(sizes), "largest": sizes[:5],
                      "top_names": [", ".join(c.terms) for c in sorted(found_clusters, key=lambda c: -len(c.members))[:5]],
                      "peak_rss_mb": peak_rss_mb()}
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))
