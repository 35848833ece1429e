"""A local cross-encoder reranker: any sentence-transformers CrossEncoder by name or path, or a trained artefact.

`reranker_for(settings, name)` is how retrieval gets one: `trained:reranker/<n>` resolves to the artefact under
RAGOPS_HOME (models/artifacts.py), anything else is a CrossEncoder name or path loaded offline (a hub name must
already be in the local Hugging Face cache: nothing is downloaded at run time). A loaded model stays loaded in the
process, one per (path, precision). Scores are raw logits: they rank within one query, they are not probabilities.
"""

from __future__ import annotations

import threading
from typing import Sequence

from ragops.errors import ConfigError, EmbeddingModelError
from ragops.models.artifacts import ModelStore, is_ref

_LOADING = threading.Lock()
_LOADED: dict[tuple[str, str, int], object] = {}


def _load(path: str, precision: str, max_length: int):
    key = (path, precision, max_length)
    model = _LOADED.get(key)
    if model is None:
        with _LOADING:
            model = _LOADED.get(key)
            if model is None:
                model = _LOADED[key] = _build(path, precision, max_length)
    return model


def _build(path: str, precision: str, max_length: int):
    import torch
    from sentence_transformers import CrossEncoder

    from ragops.logs import no_progress_bars

    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
    try:
        with no_progress_bars():
            model = CrossEncoder(path, device="cpu", local_files_only=True, max_length=max_length,
                                 model_kwargs={"dtype": dtype})
    except (OSError, ValueError) as exc:
        raise EmbeddingModelError(f"cannot load reranker {path!r} offline: {exc}") from exc
    positions = getattr(getattr(model.model, "config", None), "max_position_embeddings", None)
    if positions and positions < max_length:  # longer pairs would index past the model's position embeddings
        model.max_length = positions
    return model


class CrossEncoderReranker:
    """Scores (query, passage) pairs jointly; passages are cut to `max_length` tokens with the query."""

    def __init__(self, name: str, path: str | None = None, *, precision: str = "float32", max_length: int = 256,
                 batch_size: int = 32):
        self.name = name
        self.path = path or name
        self.precision = precision
        self.max_length = max_length
        self.batch_size = batch_size

    @property
    def model(self):
        return _load(self.path, self.precision, self.max_length)

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        try:
            scores = self.model.predict([(query, t) for t in texts], batch_size=self.batch_size,
                                        show_progress_bar=False, convert_to_numpy=True)
        except RuntimeError as exc:
            raise EmbeddingModelError(f"reranker {self.name!r} failed: {exc}") from exc
        return [float(s) for s in scores.reshape(len(texts), -1)[:, 0]]


def configured(settings, name: str | None) -> str:
    """The reranker to use: the answer config's, else RAGOPS_RERANKER_MODEL, else the endpoint's; "" = none."""
    return name or settings.reranker_model or ("remote" if settings.reranker_endpoint else "")


def reranker_for(settings, name: str | None, precision: str = "float32"):
    """The reranker an answer config names (None or "": none); `precision` is the embedder's, already resolved.

    `trained:reranker/<n>` is an artefact of this RAGOPS_HOME; `remote` is the text-embeddings-inference `/rerank`
    endpoint of RAGOPS_RERANKER_ENDPOINT (models.remote); anything else is a CrossEncoder name or path on this machine.
    """
    if not name:
        return None
    artifact = ModelStore(settings.home).resolve(name) if is_ref(name) else None
    key = (str(artifact.model_path) if artifact else name, precision)  # two homes may both have a version 1
    cached = _RERANKERS.get(key)
    if cached is not None:
        return cached
    if artifact is not None:
        if artifact.kind != "reranker":
            raise ConfigError(f"{name} is a trained {artifact.kind}, not a reranker")
        reranker = CrossEncoderReranker(artifact.ref, str(artifact.model_path), precision=precision,
                                        max_length=int(artifact.manifest.get("max_length", 256)))
    elif name == "remote":
        from ragops.models.remote import remote_reranker

        reranker = remote_reranker(settings)
        if reranker is None:
            raise ConfigError("the answer config asks for the remote reranker, but RAGOPS_RERANKER_ENDPOINT is unset")
    else:
        reranker = CrossEncoderReranker(name, precision=precision)
    _RERANKERS[key] = reranker
    return reranker


_RERANKERS: dict[tuple[str, str], object] = {}
