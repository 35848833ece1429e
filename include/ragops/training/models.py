"""Training the reader from weak pairs: a cross-encoder reranker and a contrastively adapted embedding model.

Both start from the packaged MiniLM weights (or any sentence-transformers model on disk) and train on CPU within a
time budget: a step loop that stops at `max_seconds` whatever the data size, so the `model_training` DAG has a bound.

- **Reranker**: a CrossEncoder whose encoder is initialised from the embedding model and whose one-logit head is new.
  Each query is scored against its positive, its BM25 hard negatives and the positives of other queries in the batch
  (in-batch negatives); the loss is softmax cross-entropy over that group (listwise), so the model learns to rank
  the section that answers above the ones that merely share words.
- **Embedder**: the bi-encoder fine-tuned with the multiple-negatives ranking loss over the same pairs: each query
  against every positive and hard negative in the batch, at a scale of 20 (cosine similarity x 20), the loss
  sentence-transformers uses for this. A low learning rate and one pass keep what the model already knows.

bfloat16 autocast is used where the CPU computes it natively (AVX512-BF16 or AMX); elsewhere float32, which is
faster than emulated bfloat16. The held-out metric ranks each held-out pair's positive among its hard negatives and
other positives: MRR and accuracy at 1, for the untrained bi-encoder (cosine), and for the trained model.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ragops.training.pairs import Pair

Scorer = Callable[[str, Sequence[str]], list[float]]


@dataclass
class TrainStats:
    steps: int
    examples: int
    seconds: float
    stopped_by: str  # "data" | "time"
    loss_first: float
    loss_last: float
    precision: str

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in vars(self).items()}


def _autocast(precision: str):
    import torch

    if precision == "bfloat16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class _Schedule:
    """Linear warm-up then linear decay, over whichever ends first: the data or the time budget.

    A loop stopped by its clock would otherwise end inside its warm-up, at a fraction of the learning rate, having
    learnt almost nothing; progress is therefore the larger of the share of batches done and of the time spent.
    """

    def __init__(self, optimizer, total_steps: int, max_seconds: float, clock, warmup: float = 0.06):
        self.optimizer, self.total, self.max_seconds, self.clock, self.warmup = (optimizer, max(1, total_steps),
                                                                                 max_seconds, clock, warmup)
        self.base = [g["lr"] for g in optimizer.param_groups]
        self.started = clock()
        self.steps = 0
        self._apply(0.0)

    def _apply(self, progress: float) -> None:
        factor = progress / self.warmup if progress < self.warmup else (1 - progress) / (1 - self.warmup)
        for group, base in zip(self.optimizer.param_groups, self.base):
            group["lr"] = base * max(0.02, min(1.0, factor))

    def step(self) -> None:
        self.steps += 1
        elapsed = (self.clock() - self.started) / self.max_seconds if self.max_seconds > 0 else 1.0
        self._apply(min(1.0, max(self.steps / self.total, elapsed)))


def _update(loss, model, optimizer, scheduler) -> float:
    """One optimisation step: backward, gradients clipped at norm 1, step, schedule; returns the loss."""
    import torch

    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    return float(loss.detach())


def _batches(pairs: list[Pair], size: int, epochs: int, seed: int) -> list[list[Pair]]:
    rng = random.Random(seed)
    out = []
    for _ in range(epochs):
        order = pairs[:]
        rng.shuffle(order)
        out.extend(order[i : i + size] for i in range(0, len(order) - size + 1, size))
    return out


def train_reranker(base_path: str, pairs: list[Pair], out_dir: Path, *, max_seconds: float = 420.0,
                   epochs: int = 1, batch_queries: int = 8, in_batch: int = 2, lr: float = 6e-5,
                   max_length: int = 192, precision: str = "float32", seed: int = 13,
                   clock: Callable[[], float] = time.monotonic) -> TrainStats:
    """Train a CrossEncoder from `base_path`'s encoder; save it to `out_dir` (loadable by CrossEncoder offline)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    # A bi-encoder checkpoint has the encoder only: the classification head is new (transformers says so; quiet).
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        net = AutoModelForSequenceClassification.from_pretrained(base_path, num_labels=1, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(base_path, local_files_only=True)
    finally:
        hf_logging.set_verbosity(level)
    max_length = min(max_length, int(getattr(net.config, "max_position_embeddings", max_length)))
    net.train()
    batches = _batches(pairs, batch_queries, epochs, seed)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    scheduler = _Schedule(optimizer, len(batches), max_seconds, clock)
    rng = random.Random(seed + 1)
    started, losses, stopped_by, examples = clock(), [], "data", 0
    for batch in batches:
        if clock() - started > max_seconds:
            stopped_by = "time"
            break
        queries, texts, group = [], [], 0
        for i, pair in enumerate(batch):
            others = [p.positive for j, p in enumerate(batch) if j != i and p.section != pair.section]
            candidates = [pair.positive, *pair.negatives, *rng.sample(others, min(in_batch, len(others)))]
            group = group or len(candidates)
            candidates = (candidates + [pair.negatives[0]] * group)[:group]  # every group the same width
            queries += [pair.query] * group
            texts += candidates
        features = tokenizer(queries, texts, padding=True, truncation="longest_first", max_length=max_length,
                             return_tensors="pt")
        with _autocast(precision):
            logits = net(**features).logits.view(len(batch), group).float()
        loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(batch), dtype=torch.long))
        losses.append(_update(loss, net, optimizer, scheduler))
        examples += len(texts)
    net.eval()
    net.config.sentence_transformers = {"activation_fn": "torch.nn.modules.linear.Identity"}
    net.save_pretrained(str(out_dir))
    tokenizer.model_max_length = max_length
    tokenizer.save_pretrained(str(out_dir))
    return TrainStats(len(losses), examples, round(clock() - started, 1), stopped_by, _mean(losses[:5]),
                      _mean(losses[-5:]), precision)


def train_embedder(base_path: str, pairs: list[Pair], out_dir: Path, *, max_seconds: float = 300.0,
                   epochs: int = 1, batch_size: int = 32, lr: float = 1e-5, scale: float = 20.0,
                   precision: str = "float32", seed: int = 13,
                   clock: Callable[[], float] = time.monotonic) -> TrainStats:
    """Fine-tune a SentenceTransformer with in-batch and hard negatives; save it to `out_dir`."""
    import torch
    from sentence_transformers import SentenceTransformer

    from ragops.logs import no_progress_bars

    torch.manual_seed(seed)
    with no_progress_bars():
        model = SentenceTransformer(base_path, device="cpu", local_files_only=True)
    model.train()
    batches = _batches(pairs, batch_size, epochs, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    scheduler = _Schedule(optimizer, len(batches), max_seconds, clock)
    started, losses, stopped_by, examples = clock(), [], "data", 0

    def embed(texts: list[str]):
        features = model.tokenize(texts)
        return torch.nn.functional.normalize(model(features)["sentence_embedding"].float(), dim=-1)

    for batch in batches:
        if clock() - started > max_seconds:
            stopped_by = "time"
            break
        with _autocast(precision):
            q = embed([p.query for p in batch])
            d = embed([p.positive for p in batch] + [p.negatives[0] for p in batch])
        scores = (q @ d.T) * scale
        same = torch.tensor([[a.section == b.section and i != j for j, b in enumerate(batch + batch)]
                             for i, a in enumerate(batch)])
        scores = scores.masked_fill(same, -1e4)  # another chunk of the query's own section is no negative
        loss = torch.nn.functional.cross_entropy(scores, torch.arange(len(batch)))
        losses.append(_update(loss, model, optimizer, scheduler))
        examples += len(batch)
    model.eval()
    model.save(str(out_dir))
    return TrainStats(len(losses), examples, round(clock() - started, 1), stopped_by, _mean(losses[:5]),
                      _mean(losses[-5:]), precision)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def held_out_ranking(pairs: list[Pair], scorer: Scorer, others: int = 6, seed: int = 13) -> dict:
    """Rank each pair's positive among its hard negatives and `others` positives of other sections: MRR, acc@1."""
    rng = random.Random(seed)
    reciprocal, top1 = [], []
    for i, pair in enumerate(pairs):
        pool = [p.positive for j, p in enumerate(pairs) if j != i and p.section != pair.section]
        candidates = [pair.positive, *pair.negatives, *rng.sample(pool, min(others, len(pool)))]
        scores = scorer(pair.query, candidates)
        rank = 1 + sum(s > scores[0] for s in scores[1:])
        reciprocal.append(1.0 / rank)
        top1.append(rank == 1)
    return {"pairs": len(pairs), "mrr": round(float(np.mean(reciprocal)), 4) if pairs else None,
            "accuracy_at_1": round(float(np.mean(top1)), 4) if pairs else None}
