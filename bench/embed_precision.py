"""Embedding precision benchmark: float32, bfloat16, torch dynamic int8 and ONNX Runtime side by side; prints JSON.

The same chunk texts (ragops' chunks of the RHDH docs) go through each variant in one process, in interleaved
rounds so that a noisy neighbour on a shared machine hurts every variant alike; the best round counts. Agreement
is the cosine of each vector with float32's. ONNX: the model is exported with torch's own exporter (the
TorchScript path, which needs no `onnx` package) and run by onnxruntime with the model's tokenizer, mean pooling
and normalisation, as sentence-transformers does. sentence-transformers' `[onnx]` extra is not used: it pulls
optimum, which downgrades transformers below the stack's pins.

    .venv/bin/python bench/embed_precision.py [--docs $RAGOPS_EVAL_RHDH/docs] [--limit 600] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _rhdh import RHDH

REPO = Path(__file__).resolve().parents[1]


def corpus_chunks(docs: Path, limit: int) -> list[str]:
    from ragops.ingest.chunking import chunk_document
    from ragops.ingest.embedding import Embedder
    from ragops.ingest.parsing import parse

    counter = Embedder("all-MiniLM-L6-v2", precision="float32")
    texts: list[str] = []
    for path in sorted(docs.glob("*/master.txt")) or sorted(docs.rglob("*.md")):
        parsed = parse(path.read_text(encoding="utf-8"), path.as_uri())
        texts += [c.text for c in chunk_document(parsed, path.as_uri(), counter.max_tokens, counter.count_tokens)]
    step = max(1, len(texts) // limit) if limit else 1  # an even sample across guides, not the first few
    return texts[::step][:limit] if limit else texts


class OnnxEncoder:
    """all-MiniLM-L6-v2 exported to ONNX and run by onnxruntime (mean pooling, L2 normalisation)."""

    def __init__(self, model_path: str, work: Path, batch_size: int):
        import onnxruntime as ort
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
        bert = AutoModel.from_pretrained(model_path, local_files_only=True).eval()

        class Wrapped(torch.nn.Module):  # explicit positional inputs for the tracer
            def __init__(self):
                super().__init__()
                self.bert = bert

            def forward(self, input_ids, attention_mask, token_type_ids):
                return self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                                 return_dict=True).last_hidden_state

        model = Wrapped().eval()
        sample = self.tokenizer(["an example sentence"], return_tensors="pt")
        target = work / "model.onnx"
        names = ["input_ids", "attention_mask", "token_type_ids"]
        axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"last_hidden_state": {0: "batch", 1: "sequence"}}
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, tuple(sample[n] for n in names), str(target), input_names=names,
                              output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])
        self.batch_size = batch_size
        self.max_length = 256

    def encode(self, texts: list[str]) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts])  # length-sorted batches pad less, as sentence-transformers does
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_length,
                                   return_tensors="np")
            hidden = self.session.run(None, {k: batch[k].astype(np.int64) for k in ("input_ids", "attention_mask",
                                                                                  "token_type_ids")})[0]
            mask = batch["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
            out[idx] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", default=str(RHDH / "docs"))
    parser.add_argument("--limit", type=int, default=600, help="chunks to encode per round (0: all)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-onnx", action="store_true")
    args = parser.parse_args()
    docs = Path(args.docs) if Path(args.docs).exists() else REPO / "docs"

    import torch

    from ragops.ingest.embedding import Embedder, native_bfloat16

    texts = corpus_chunks(docs, args.limit)
    encoders = {p: Embedder("all-MiniLM-L6-v2", 64, p) for p in ("float32", "bfloat16", "int8")}
    encode = {p: e.encode for p, e in encoders.items()}
    load_s = {}
    for name, encoder in encoders.items():
        started = time.perf_counter()
        encoder.encode(["warm up"] * 4)
        load_s[name] = round(time.perf_counter() - started, 2)
    onnx_error = None
    work = Path(tempfile.mkdtemp(prefix="ragops-onnx-"))
    if not args.no_onnx:
        try:
            started = time.perf_counter()
            onnx = OnnxEncoder(encoders["float32"].path, work, 64)
            onnx.encode(["warm up"] * 4)
            encode["onnx"] = onnx.encode
            load_s["onnx"] = round(time.perf_counter() - started, 2)
        except (ImportError, RuntimeError, OSError, TypeError, ValueError) as exc:  # reported, not hidden: the other variants still count
            onnx_error = f"{type(exc).__name__}: {exc}"[:300]

    times: dict[str, list[float]] = {name: [] for name in encode}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):
        for name, fn in encode.items():
            started = time.perf_counter()
            vectors[name] = fn(texts)
            times[name].append(time.perf_counter() - started)
    base = vectors["float32"]
    result = {
        "chunks": len(texts), "rounds": args.rounds, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "native_bfloat16": native_bfloat16(), "load_and_warm_s": load_s, "onnx_error": onnx_error,
        "variants": {},
    }
    for name in encode:
        cos = np.sum(vectors[name] * base, axis=1)
        best = min(times[name])
        result["variants"][name] = {
            "best_s": round(best, 2), "rounds_s": [round(t, 2) for t in times[name]],
            "chunks_per_s": round(len(texts) / best, 1), "speedup_vs_float32": round(min(times["float32"]) / best, 3),
            "cosine_to_float32_min": round(float(cos.min()), 5), "cosine_to_float32_mean": round(float(cos.mean()), 6),
        }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
