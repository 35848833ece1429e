"""Train the reader from the live index's chunks and store each model as a versioned artefact with its evidence.

The chunks come from one pinned index version (what users are answered from), so the pairs are reproducible: the
manifest records the index version, the hash of the training pairs, their counts per kind, the parameters, the
training statistics and the held-out ranking metrics before (the embedding model's cosine) and after training.
Users' votes add pairs of real questions (training/votes.py, `RAGOPS_TRAIN_VOTES`), never a question any
evaluation asks: the caller passes those in (`ragops.evaluation.growth.evaluation_questions`), and training from
votes without them is refused. The held-out metric stays on the corpus's own pairs.
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from ragops.config import Settings
from ragops.errors import ConfigError, StoreUnavailable
from ragops.index import open_store
from ragops.ingest.embedding import Embedder, resolve_model_path, resolve_precision
from ragops.logs import no_progress_bars
from ragops.models.artifacts import ModelStore
from ragops.registry import Registry
from ragops.training import models
from ragops.training.pairs import CorpusChunk, build_pairs, counts, data_hash, split
from ragops.training.votes import VoteHarvest, vote_pairs

KINDS = ("reranker", "embedder")
HELD_OUT_LIMIT = 60  # held-out heading pairs scored per model: 600 reranker pairs, bounded in time on 2 cores
OVERHEAD_SHARE = 0.2  # of max_seconds kept for loading, pair building, held-out scoring and saving


def corpus_chunks(settings: Settings, registry: Registry | None = None,
                  index_version: int | None = None) -> tuple[list[CorpusChunk], int, str]:
    """The chunks of the live (or given) index version, its id and the embedding model it was built with."""
    from ragops.registry.db import live_index_version
    from ragops.registry.models import IndexVersion

    registry = registry or Registry(settings.registry_url)
    with registry.session() as s:
        version = s.get(IndexVersion, index_version) if index_version else live_index_version(s)
        if version is None:
            raise StoreUnavailable("there is no index to train from: run `ragops refresh` first")
        ref = (version.id, version.collection, version.store_version, version.embedding_model)
    store = open_store(settings, ref[1])
    store.checkout(ref[2])
    rows = store.rows(["chunk_id", "doc_uri", "ordinal", "heading", "title", "text"])
    return [CorpusChunk(r["chunk_id"], r["doc_uri"], int(r["ordinal"]), r["heading"] or "", r["title"] or "",
                        r["text"]) for r in rows], ref[0], ref[3]


def _cosine_scorer(embedder) -> models.Scorer:
    def score(query: str, texts) -> list[float]:
        vectors = embedder.encode([query, *texts])
        return [float(v) for v in vectors[1:] @ vectors[0]]
    return score


def train_models(settings: Settings, *, kinds: tuple[str, ...] = KINDS, max_seconds: float = 840.0,
                 registry: Registry | None = None, index_version: int | None = None, base_model: str | None = None,
                 seed: int = 13, clock: Callable[[], float] = time.monotonic,
                 evaluation_questions: set[str] | None = None) -> dict:
    """Build the pairs, train each kind within its share of `max_seconds`, publish each as an artefact.
    `evaluation_questions`: the `normal()`-ised questions of every evaluation set, required when votes are used."""
    if settings.train_votes and evaluation_questions is None:
        raise ConfigError("training from users' votes needs the evaluation sets' questions, to leave them out "
                          "(ragops.evaluation.growth.evaluation_questions); or set RAGOPS_TRAIN_VOTES=false")
    with no_progress_bars():  # loading and saving models draw bars on stderr, which Airflow logs as errors
        return _train_models(settings, kinds, max_seconds, registry, index_version, base_model, seed, clock,
                             evaluation_questions or set())


def _votes(settings: Settings, registry: Registry | None, chunks: list[CorpusChunk], asked: set[str],
           seed: int, held_out: set[str]) -> tuple[list, dict]:
    """Pairs from the votes of the question-retention window (older questions have no text left), and their account."""
    if not settings.train_votes:
        return [], {"off": True}
    since = datetime.now(timezone.utc) - timedelta(days=settings.question_retention_days)
    harvest: VoteHarvest = vote_pairs(registry or Registry(settings.registry_url), chunks, asked, since,
                                      verified_only=settings.train_votes_verified_only,
                                      per_user=settings.train_votes_per_user, seed=seed, held_out=held_out)
    return harvest.pairs, harvest.to_dict()


def _train_models(settings, kinds, max_seconds, registry, index_version, base_model, seed, clock, asked) -> dict:
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ConfigError(f"unknown model kind(s) {unknown or kinds}; choose from {', '.join(KINDS)}")
    if max_seconds <= 0:
        raise ConfigError("max_seconds must be positive")
    started = clock()
    chunks, version_id, index_model = corpus_chunks(settings, registry, index_version)
    if len(chunks) < 4:
        raise ConfigError(f"index version {version_id} has {len(chunks)} chunks: too few to train from")
    base_name = base_model or index_model
    base_path = resolve_model_path(base_name)
    precision = resolve_precision(settings.embedding_precision)
    precision = precision if precision in ("float32", "bfloat16") else "float32"
    pairs = build_pairs(chunks, seed=seed)
    train, held = split(pairs, seed=seed)
    held_sections = {p.section for p in held}  # never trained on, from votes either
    held = [p for p in held if p.kind == "heading"][:HELD_OUT_LIMIT]  # the pairs closest to a user's question
    voted, votes = _votes(settings, registry, chunks, asked, seed, held_sections)
    train += voted  # all trained on: the held-out metric stays the corpus's own
    evidence = {"index_version": version_id, "base_model": base_name, "data_hash": data_hash(pairs + voted),
                "pairs": {"train": counts(train), "held_out": counts(held)}, "votes": votes, "seed": seed,
                "precision": precision}
    before = models.held_out_ranking(held, _cosine_scorer(Embedder(base_name, 16, precision)), seed=seed)
    training = (1 - OVERHEAD_SHARE) * max_seconds - (clock() - started)
    share = {"reranker": 0.6, "embedder": 0.4} if len(kinds) == 2 else {kinds[0]: 1.0}
    store, published = ModelStore(settings.home), {}
    for kind in kinds:
        budget = max(1.0, share[kind] * training)
        with tempfile.TemporaryDirectory(prefix=f"ragops-train-{kind}-") as tmp:
            out = Path(tmp) / "model"
            if kind == "reranker":
                params = {"max_length": 192, "batch_queries": 8, "in_batch": 2, "lr": 6e-5, "epochs": 1}
                stats = models.train_reranker(base_path, train, out, max_seconds=budget, precision=precision,
                                              seed=seed, clock=clock, **params)
                from ragops.models.rerank import CrossEncoderReranker

                after = models.held_out_ranking(held, CrossEncoderReranker(kind, str(out), max_length=192).score,
                                                seed=seed)
            else:
                params = {"batch_size": 32, "lr": 1e-5, "scale": 20.0, "epochs": 1}
                stats = models.train_embedder(base_path, train, out, max_seconds=budget, precision=precision,
                                              seed=seed, clock=clock, **params)
                after = models.held_out_ranking(held, _cosine_scorer(Embedder(str(out), 16, "float32")), seed=seed)
            manifest = evidence | {"params": params, "training": stats.to_dict(),
                                   "held_out": {"before_cosine": before, "after": after},
                                   "max_length": params.get("max_length", 256)}
            artifact = store.publish(kind, out, manifest)
        published[kind] = {"ref": artifact.ref, "path": str(artifact.model_path), "training": stats.to_dict(),
                           "held_out": manifest["held_out"]}
    return {"index_version": version_id, "data_hash": evidence["data_hash"], "pairs": evidence["pairs"],
            "votes": votes, "models": published, "seconds": round(clock() - started, 1)}


def list_models(settings: Settings) -> list[dict]:
    store = ModelStore(settings.home)
    out = []
    for kind in KINDS:
        for artifact in store.versions(kind):
            manifest = artifact.manifest
            out.append({"ref": artifact.ref, "created_at": manifest.get("created_at"),
                        "index_version": manifest.get("index_version"), "data_hash": manifest.get("data_hash"),
                        "held_out": manifest.get("held_out"), "training": manifest.get("training")})
    return out

