"""Tiny models the tests build themselves, and a real HTTP server that serves them over the remote protocols.

`tiny_sentence_transformer` and `tiny_cross_encoder` save randomly initialised one-layer BERTs (hidden size 32) with
the packaged MiniLM's tokenizer; each loads in well under a second. `ModelServer` speaks OpenAI `/v1/embeddings`,
text-embeddings-inference `/embed` and `/rerank` by running them, and injects faults by `mode`.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from support import serve_in_thread

HIDDEN = 32


def _bert_config(tokenizer, **extra):
    from transformers import BertConfig

    return BertConfig(hidden_size=HIDDEN, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                      vocab_size=tokenizer.vocab_size, max_position_embeddings=128, **extra)


def _tokenizer():
    from transformers import AutoTokenizer

    from ragops.ingest.embedding import resolve_model_path

    return AutoTokenizer.from_pretrained(resolve_model_path("all-MiniLM-L6-v2"), local_files_only=True)


def tiny_sentence_transformer(root: Path) -> Path:
    """A sentence-transformers model (BERT + mean pooling) saved under `root`; returns its path."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertModel

    torch.manual_seed(0)
    tokenizer = _tokenizer()
    hf = root / "hf-embedder"
    BertModel(_bert_config(tokenizer)).save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    transformer = models.Transformer(str(hf), max_seq_length=64)
    pooling = models.Pooling(HIDDEN, pooling_mode="mean")
    path = root / "tiny-embedder"
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(path))
    return path


def tiny_cross_encoder(root: Path) -> Path:
    """A sentence-transformers CrossEncoder (BERT with one relevance logit) saved under `root`; returns its path."""
    import torch
    from transformers import BertForSequenceClassification

    torch.manual_seed(1)
    tokenizer = _tokenizer()
    path = root / "tiny-reranker"
    BertForSequenceClassification(_bert_config(tokenizer, num_labels=1)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


class ModelServer:
    """A real HTTP server on 127.0.0.1 and a free port, running `embedder` (a SentenceTransformer) and `reranker`
    (a CrossEncoder).

    `mode` injects faults: ok, hang (no answer until `released` is set, which close() does), error (500), garbage
    (not JSON), shape (JSON of the wrong shape), short (one vector or score too few), ragged (one vector shorter),
    nan, bad_index (an index twice). `dim`, when set, truncates every vector to that many dimensions: a server whose
    model changed. `requests` records (path, payload, Authorization header).
    """

    def __init__(self, embedder=None, reranker=None):
        self.embedder, self.reranker = embedder, reranker
        self.mode = "ok"
        self.dim: int | None = None
        self.requests: list[tuple[str, dict, str | None]] = []
        self.released = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: bytes):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                fake.requests.append((self.path, payload, self.headers.get("Authorization")))
                if fake.mode == "hang":
                    fake.released.wait(30)
                    return self._send(200, b"[]")
                if fake.mode == "error":
                    return self._send(500, b'{"error": "CUDA out of memory", "error_type": "backend"}')
                if fake.mode == "garbage":
                    return self._send(200, b"<html>502 Bad Gateway</html>")
                if fake.mode == "shape":
                    return self._send(200, b'{"object": "list"}')
                body = fake.answer(self.path, payload)
                if body is None:
                    return self._send(404, b'{"error": "not found"}')
                self._send(200, json.dumps(body).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        serve_in_thread(self.server)

    def vectors(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        vectors = self.embedder.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        if self.dim is not None:
            vectors = vectors[:, : self.dim]
            vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        rows = [[float(x) for x in v] for v in vectors]
        if self.mode == "short":
            rows = rows[:-1]
        if self.mode == "ragged":
            rows[-1] = rows[-1][:-1]
        if self.mode == "nan":
            rows[0][0] = float("nan")
        return rows

    def answer(self, path: str, payload: dict):
        if path == "/v1/embeddings":
            rows = self.vectors(payload["input"])
            data = [{"object": "embedding", "embedding": v, "index": i} for i, v in enumerate(rows)]
            if self.mode == "bad_index":
                data[-1]["index"] = 0
            # the data in reverse order: a client must place vectors by `index`, not by position
            return {"object": "list", "model": payload["model"], "data": data[::-1]}
        if path == "/embed":
            return self.vectors(payload["inputs"])
        if path == "/rerank":
            scores = self.reranker.predict([(payload["query"], t) for t in payload["texts"]])
            ranked = [{"index": i, "score": float(s)} for i, s in enumerate(scores)]
            if self.mode == "short":
                ranked = ranked[:-1]
            if self.mode == "nan":
                ranked[0]["score"] = float("nan")
            if self.mode == "bad_index":
                ranked[-1]["index"] = 0
            return sorted(ranked, key=lambda r: -r["score"])  # as TEI answers: best first
        return None

    def close(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
