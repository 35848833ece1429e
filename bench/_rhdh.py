"""Where the benchmarks find the RHDH evaluation set: `$RAGOPS_EVAL_RHDH`, else ../shared/eval/rhdh beside the
checkout. bench/data.py builds it from the public dataset repository (docs/benchmarks.md, "Evaluation data")."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RHDH = Path(os.environ.get("RAGOPS_EVAL_RHDH") or REPO.parent / "shared" / "eval" / "rhdh")


def absent(path: Path) -> str:
    """The `skipped` reason a benchmark prints when the set is not there."""
    return f"{path} is absent (build it with bench/data.py and set RAGOPS_EVAL_RHDH, see docs/benchmarks.md)"
