"""Remote embedding and rerank endpoints, for GPU servers when one machine's CPU is not enough.

Three protocols that production teams run:

- OpenAI-compatible `POST {base}/v1/embeddings`: `{"model", "input": [...]}` -> `{"data": [{"embedding", "index"}]}`
  (OpenAI, vLLM, Infinity, and text-embeddings-inference itself). A base that already ends in `/v1` is used as is.
- Hugging Face text-embeddings-inference (TEI) `POST {base}/embed`: `{"inputs": [...], "normalize": true,
  "truncate": true}` -> `[[...], ...]`.
- TEI `POST {base}/rerank`: `{"query", "texts": [...], "raw_scores": false}` -> `[{"index", "score"}]`, sorted by
  score; mapped back to the order given.

Texts go in batches of at most `max_batch` (TEI refuses more than its `--max-client-batch-size`, 32 by default,
with 413). Every failure (timeout, HTTP error, a body that is not JSON or not the protocol's shape, a wrong count,
wrong or inconsistent dimensions, NaN) raises EmbeddingModelError naming the endpoint, credentials masked.
Vectors are L2-normalised here whatever the server does, as the local embedder's are.
"""

from __future__ import annotations

import math
import re
import threading
from typing import Sequence
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np

from ragops.config import mask_url
from ragops.errors import EmbeddingModelError

PROTOCOLS = ("openai", "tei")
# A remote model's name: "<model>@<protocol>+<endpoint without credentials>". It is the embedding cache's key and
# index_versions.embedding_model, so vectors of different endpoints never share a cache entry, and a reader of an
# index version can rebuild the embedder that wrote it.
_REMOTE_NAME = re.compile(r"^(?P<model>.*)@(?P<protocol>openai|tei)\+(?P<base>https?://\S+)$")


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def endpoint_identity(url: str) -> str:
    """The endpoint as it is recorded in model names: no user, no credentials (masked parameters), no trailing
    slash."""
    return _without_userinfo(mask_url(url.strip())).rstrip("/")


def remote_name(model: str, protocol: str, base_url: str) -> str:
    if protocol not in PROTOCOLS:
        raise EmbeddingModelError(f"unknown embedding protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    return f"{model}@{protocol}+{endpoint_identity(base_url)}"


def parse_remote_name(name: str) -> tuple[str, str, str] | None:
    """(model, protocol, endpoint) of a remote model's name; None for a local model's name or path."""
    match = _REMOTE_NAME.match(name)
    return (match["model"], match["protocol"], match["base"]) if match else None


class _Endpoint:
    """One base URL: JSON over HTTP with a bearer key and a total timeout; every failure is an EmbeddingModelError."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 30.0):
        self.base_url = base_url.strip().rstrip("/")
        self.shown = mask_url(self.base_url)
        self.timeout_s = timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=httpx.Timeout(timeout_s), headers=headers)

    def post(self, path: str, payload: dict):
        where = f"{self.shown}{path}"
        try:
            response = self.client.post(self.base_url + path, json=payload)
        except httpx.TimeoutException as exc:
            raise EmbeddingModelError(f"the model endpoint {where} did not answer within {self.timeout_s:g} s "
                                      "(RAGOPS_EMBEDDING_TIMEOUT_S)") from exc
        except httpx.HTTPError as exc:  # refused connection, DNS, a dropped stream
            raise EmbeddingModelError(f"cannot reach the model endpoint {where}: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            detail = " ".join(response.text[:300].split())
            hint = " (a batch too large for the server: lower RAGOPS_EMBEDDING_MAX_BATCH)" if response.status_code == 413 else ""
            raise EmbeddingModelError(f"the model endpoint {where} answered HTTP {response.status_code}{hint}: {detail}")
        try:
            return response.json()
        except ValueError as exc:
            raise EmbeddingModelError(f"the model endpoint {where} answered with a body that is not JSON: "
                                      f"{response.text[:80]!r}") from exc

    def close(self) -> None:
        self.client.close()


def _batches(texts: Sequence[str], size: int):
    for start in range(0, len(texts), size):
        yield start, list(texts[start : start + size])


class RemoteEmbeddings:
    """An embedding endpoint speaking `protocol` ("openai" or "tei"), checked answer by answer.

    `dim`: the dimension every vector must have; None learns it from the first answer, after which it holds too.
    """

    def __init__(self, base_url: str, protocol: str, model: str, *, api_key: str | None = None,
                 timeout_s: float = 30.0, max_batch: int = 32, dim: int | None = None):
        if max_batch < 1:
            raise EmbeddingModelError(f"the remote embedding batch must hold at least one text, not {max_batch}")
        self.name = remote_name(model, protocol, base_url)
        self.protocol = protocol
        self.model = model
        self.max_batch = max_batch
        self.dim = dim
        self._endpoint = _Endpoint(base_url, api_key, timeout_s)
        base = self._endpoint.base_url
        self.path = ("/embeddings" if base.endswith("/v1") else "/v1/embeddings") if protocol == "openai" else "/embed"
        self._dim_lock = threading.Lock()

    @property
    def where(self) -> str:
        return self._endpoint.shown + self.path

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One unit vector per text, in order, as a float32 array of shape (len(texts), dim)."""
        out = [self._embed_batch(batch) for _, batch in _batches(texts, self.max_batch)]
        if not out:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        return np.concatenate(out)

    def _embed_batch(self, batch: list[str]) -> np.ndarray:
        if self.protocol == "openai":
            rows = self._openai_rows(self._endpoint.post(self.path, {"model": self.model, "input": batch}), len(batch))
        else:
            rows = self._endpoint.post(self.path, {"inputs": batch, "normalize": True, "truncate": True})
            if not isinstance(rows, list):
                raise self._bad("a JSON list of vectors", rows)
        if len(rows) != len(batch):
            raise EmbeddingModelError(f"the model endpoint {self.where} answered {len(rows)} vectors for "
                                      f"{len(batch)} texts")
        return self._checked(rows)

    def _openai_rows(self, payload, n: int) -> list:
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list) or not all(isinstance(d, dict) and "embedding" in d for d in data):
            raise self._bad('{"data": [{"embedding": [...], "index": i}, ...]}', payload)
        if len(data) != n:
            return data  # the count check names it
        if any("index" in d for d in data):  # the order of `data` is not promised: `index` is
            indexes = [d.get("index") for d in data]
            if sorted(i for i in indexes if isinstance(i, int)) != list(range(n)):
                raise EmbeddingModelError(f"the model endpoint {self.where} answered the indexes {indexes[:10]} for "
                                          f"{n} texts; each of 0..{n - 1} must come once")
            data = sorted(data, key=lambda d: d["index"])
        return [d["embedding"] for d in data]

    def _checked(self, rows: list) -> np.ndarray:
        lengths = {len(r) if isinstance(r, list) else -1 for r in rows}
        if -1 in lengths:
            raise EmbeddingModelError(f"the model endpoint {self.where} answered a vector that is not a list of numbers")
        if len(lengths) > 1:
            raise EmbeddingModelError(f"the model endpoint {self.where} answered vectors of inconsistent dimensions "
                                      f"{sorted(lengths)} in one batch")
        try:
            vectors = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise EmbeddingModelError(f"the model endpoint {self.where} answered a vector that is not a list of "
                                      "numbers") from exc
        dim = vectors.shape[1]
        with self._dim_lock:
            if self.dim is None and dim > 0:
                self.dim = dim
        if dim != self.dim:
            raise EmbeddingModelError(f"the model endpoint {self.where} answered {dim}-dimensional vectors, but "
                                      f"{self.dim} dimensions are expected (RAGOPS_EMBEDDING_DIM, or its first answer)")
        if not np.isfinite(vectors).all():
            raise EmbeddingModelError(f"the model endpoint {self.where} answered vectors holding NaN or infinity")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if (norms == 0).any():
            raise EmbeddingModelError(f"the model endpoint {self.where} answered an all-zero vector")
        return vectors / norms

    def _bad(self, wanted: str, payload) -> EmbeddingModelError:
        shown = repr(payload)[:80]
        return EmbeddingModelError(f"the model endpoint {self.where} answered {shown}, not {wanted}")

    def close(self) -> None:
        self._endpoint.close()


class TEIReranker:
    """A `Reranker` behind text-embeddings-inference's `/rerank`; scores are TEI's (sigmoid unless raw_scores)."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout_s: float = 30.0, max_batch: int = 32):
        if max_batch < 1:
            raise EmbeddingModelError(f"the rerank batch must hold at least one text, not {max_batch}")
        self.name = f"tei+{endpoint_identity(base_url)}"
        self.max_batch = max_batch
        self._endpoint = _Endpoint(base_url, api_key, timeout_s)
        self.where = self._endpoint.shown + "/rerank"

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        scores: list[float] = []
        for _, batch in _batches(texts, self.max_batch):
            scores.extend(self._score_batch(query, batch))
        return scores

    def _score_batch(self, query: str, batch: list[str]) -> list[float]:
        payload = self._endpoint.post("/rerank", {"query": query, "texts": batch, "raw_scores": False,
                                                  "truncate": True})
        if not isinstance(payload, list) or not all(isinstance(r, dict) and "index" in r and "score" in r for r in payload):
            raise EmbeddingModelError(f"the rerank endpoint {self.where} answered {repr(payload)[:80]}, not "
                                      '[{"index": i, "score": s}, ...]')
        by_index: dict[int, float] = {}
        for item in payload:
            index, score = item["index"], item["score"]
            if not isinstance(index, int) or not 0 <= index < len(batch) or index in by_index:
                raise EmbeddingModelError(f"the rerank endpoint {self.where} answered the index {index!r} for "
                                          f"{len(batch)} texts; each of 0..{len(batch) - 1} must come once")
            if not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score):
                raise EmbeddingModelError(f"the rerank endpoint {self.where} answered the score {score!r}, not a number")
            by_index[index] = float(score)
        if len(by_index) != len(batch):
            raise EmbeddingModelError(f"the rerank endpoint {self.where} answered {len(by_index)} scores for "
                                      f"{len(batch)} texts")
        return [by_index[i] for i in range(len(batch))]

    def close(self) -> None:
        self._endpoint.close()


def _secret(value) -> str | None:
    return value.get_secret_value() if value is not None else None


def remote_embeddings(settings, model_name: str | None = None) -> RemoteEmbeddings | None:
    """The endpoint behind `model_name` (default: the settings' model); None when the model is local.

    A remote model's name (`remote_name`) names its endpoint itself, so an index version's recorded model always
    rebuilds the embedder that wrote it. A plain name given explicitly is a local model; the settings' own plain
    model is remote when RAGOPS_EMBEDDING_ENDPOINT is set.
    """
    parsed = parse_remote_name(model_name or settings.embedding_model)
    if parsed is None:
        if model_name is not None or not settings.embedding_endpoint:
            return None
        parsed = (settings.embedding_model, settings.embedding_protocol, settings.embedding_endpoint)
    model, protocol, base = parsed
    # The recorded name has no credentials; when it names the configured endpoint, use that URL (with them).
    if settings.embedding_endpoint and endpoint_identity(settings.embedding_endpoint) == endpoint_identity(base):
        base = settings.embedding_endpoint
    return RemoteEmbeddings(base, protocol, model, api_key=_secret(settings.embedding_api_key),
                            timeout_s=settings.embedding_timeout_s, max_batch=settings.embedding_max_batch,
                            dim=settings.embedding_dim)


def remote_reranker(settings) -> TEIReranker | None:
    """The TEI reranker of RAGOPS_RERANKER_ENDPOINT, or None when it is unset.

    The hook for the reranker factory beside the local CrossEncoder (`models.rerank`): an endpoint, when set, wins
    over RAGOPS_RERANKER_MODEL.
    """
    if not settings.reranker_endpoint:
        return None
    return TEIReranker(settings.reranker_endpoint, api_key=_secret(settings.reranker_api_key),
                       timeout_s=settings.embedding_timeout_s, max_batch=settings.embedding_max_batch)
