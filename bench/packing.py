"""Context packing off against on, on $RAGOPS_EVAL_RHDH's dev questions; prints one JSON document.

The index is built as bench/quality.py builds it (Refresher -> LanceDB, default settings) and read through the
answer pipeline's retriever with its defaults (`DEFAULTS`). For each question:
- off: the passages of `retrieve(question, 20)`, in rank order, until 4,000 characters (the last one cut);
- on: the same with `pack_chars` 4,000 and `pack_from` 20 (answer/packing.py, the default embedding scorer).
Measures (ragops.evaluation.measures): answer-token recall of the reference answer in that context, hit = recall
>= 0.8; the paired difference (on - off) with a bootstrap 95% interval over questions (10,000 resamples, fixed
seed); the characters of context the measure reads, and those the pipeline would send a language model
(`_prompt`'s rule: k passages up to `max_context_chars`); the time retrieval takes per question.

The packing parameters are the module's defaults, chosen before this was first run (packing.py says why);
nothing here searches over them.

    nice .venv/bin/python bench/packing.py [--home DIR (kept; reused when indexed)]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _rhdh import RHDH, absent

K = 20
PACK = {"pack_chars": 4000, "pack_from": 20}
RESAMPLES = 10_000
SEED = 19


def paired(on: np.ndarray, off: np.ndarray) -> dict:
    """Mean difference on - off, its percentile bootstrap 95% interval (questions resampled) and the counts."""
    from ragops.evaluation.paired import paired_bootstrap

    found = paired_bootstrap(off, on, resamples=RESAMPLES, seed=SEED)
    return {"difference": round(found.difference, 4), "ci95": [round(found.low, 4), round(found.high, 4)],
            "better": found.better, "worse": found.worse}


def prompt_chars(texts: list[str], k: int, budget: int) -> int:
    """What `answer.pipeline._prompt` sends of the first k passages: whole ones while the budget lasts."""
    sent = 0
    for text in texts[:k]:
        sent += min(len(text), max(0, budget - sent))
        if sent >= budget:
            break
    return sent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", help="RAGOPS_HOME to index into and keep (reused when already indexed)")
    args = parser.parse_args()
    if not (RHDH / "dev.jsonl").exists():
        print(json.dumps({"skipped": absent(RHDH)}))
        return 0
    from ragops.answer.pipeline import DEFAULTS, AnswerService
    from ragops.config import Settings
    from ragops.evaluation.measures import CONTEXT_CHARS, HIT_RECALL, context_until, token_recall
    from ragops.ingest.refresh import Refresher
    from ragops.registry import Registry

    dev = [json.loads(line) for line in (RHDH / "dev.jsonl").read_text().splitlines() if line.strip()]
    work = Path(tempfile.mkdtemp(prefix="ragops-bench-packing-"))
    result: dict = {"questions": len(dev), "k": K, "context_chars": CONTEXT_CHARS, "packing": PACK,
                    "bootstrap": {"resamples": RESAMPLES, "seed": SEED}}
    try:
        home = Path(args.home) if args.home else work / "home"
        settings = Settings(home=home, source=(RHDH / "docs").as_uri())
        settings.ensure_home()
        registry = Registry(settings.registry_url)
        started = time.perf_counter()
        report = Refresher(settings, registry=registry).run()
        result["index"] = {"chunks": report.chunks, "seconds": round(time.perf_counter() - started, 1),
                           "chunk_max_tokens": settings.chunk_max_tokens}
        service = AnswerService(settings, registry)
        _, live = service.rollout()
        retriever = service.retriever(live)
        retriever.search(dev[0]["question"], K, config=DEFAULTS | PACK)  # load the model outside the timings

        arms: dict = {}
        for name, config in (("off", DEFAULTS), ("on", DEFAULTS | PACK)):
            texts, seconds = [], []
            for q in dev:
                started = time.perf_counter()
                texts.append([h.text for h in retriever.retrieve(q["question"], K, config=config).hits])
                seconds.append(time.perf_counter() - started)
            recall = np.array([token_recall(q["reference_answer"], context_until(t)) for q, t in zip(dev, texts)])
            arms[name] = {"recall": recall, "hit": (recall >= HIT_RECALL).astype(float), "summary": {
                "answer_token_recall": round(float(recall.mean()), 3),
                "hit_rate": round(float((recall >= HIT_RECALL).mean()), 3),
                "mean_context_chars": round(float(np.mean([min(CONTEXT_CHARS, sum(map(len, t))) for t in texts])), 1),
                "mean_prompt_chars": round(float(np.mean([prompt_chars(t, DEFAULTS["k"], DEFAULTS["max_context_chars"])
                                                          if name == "off" else sum(map(len, t)) for t in texts])), 1),
                "mean_passages": round(float(np.mean([len(t) for t in texts])), 2),
                "ms_per_question_p50": round(float(np.median(seconds)) * 1000, 1)}}
        result["off"], result["on"] = arms["off"]["summary"], arms["on"]["summary"]
        result["on_minus_off"] = {"answer_token_recall": paired(arms["on"]["recall"], arms["off"]["recall"]),
                                  "hit_rate": paired(arms["on"]["hit"], arms["off"]["hit"])}
        print(json.dumps(result, indent=2))
    finally:
        if not args.home:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
