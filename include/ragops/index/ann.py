"""The approximate vector index kept for a large collection, backend-neutral: when it is worth having, with which
parameters, how often it must be rebuilt, and the per-query knob that trades recall for speed.

Below `min_rows` chunks a dense query scans every vector, exactly: that is fast enough there and needs no upkeep.
Above it the LanceDB backend keeps an IVF-SQ index (`index/lance_ann.py`) and Weaviate its HNSW graph
(`index/weaviate/schema.py`). docs/production.md has the limits the benchmark measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ragops.errors import StoreUnavailable

MAX_NPROBES = 4096  # bounds for a caller's knob: far above any useful setting, low enough to cap a query's cost
MAX_REFINE_FACTOR = 100
MAX_EF = 4096


@dataclass(frozen=True)
class AnnKnob:
    """One query's recall/speed trade-off; a field left None takes the configured default (AnnPolicy).

    nprobes: IVF partitions searched (LanceDB); refine_factor: candidates re-scored with full vectors per result
    wanted (LanceDB); ef: HNSW candidate list size (Weaviate, -1 = dynamic).
    """

    nprobes: int | None = None
    refine_factor: int | None = None
    ef: int | None = None

    def __post_init__(self):
        for name, low, high in (("nprobes", 1, MAX_NPROBES), ("refine_factor", 1, MAX_REFINE_FACTOR),
                                ("ef", -1, MAX_EF)):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high):
                raise StoreUnavailable(f"ANN {name} must be an integer from {low} to {high}, not {value!r}")


@dataclass(frozen=True)
class AnnPolicy:
    """When a collection gets an approximate index, and the defaults its queries use (RAGOPS_ANN_* settings)."""

    min_rows: int = 20_000
    nprobes: int = 20
    refine_factor: int = 10
    ef: int = -1
    min_indexed_share: float = 0.9
    recall_floor: float = 0.9
    recall_sample: int = 8

    @classmethod
    def from_settings(cls, settings) -> AnnPolicy:
        return cls(min_rows=settings.ann_min_rows, nprobes=settings.ann_nprobes,
                   refine_factor=settings.ann_refine_factor, ef=settings.ann_ef,
                   min_indexed_share=settings.ann_min_indexed_share, recall_floor=settings.ann_recall_floor,
                   recall_sample=settings.ann_recall_sample)

    def knob(self, knob: AnnKnob | None) -> AnnKnob:
        """`knob` with every unset field filled from the configured defaults."""
        knob = knob or AnnKnob()
        return AnnKnob(nprobes=knob.nprobes or self.nprobes, refine_factor=knob.refine_factor or self.refine_factor,
                       ef=self.ef if knob.ef is None else knob.ef)

    def wants_index(self, rows: int, has_index: bool) -> bool:
        """Build at `min_rows`; drop only below half of it, so a collection at the line does not flap."""
        return rows >= self.min_rows or (has_index and rows >= self.min_rows // 2)


@dataclass(frozen=True)
class IvfParams:
    num_partitions: int


def ivf_params(rows: int) -> IvfParams:
    """sqrt(rows)/4 partitions (250 at a million rows, of 4,000 rows each): k-means stays quick on two cores, and the
    default 20 probes read 8% of the rows at a million. Each vector is kept as 8-bit scalar codes (IVF-SQ): 48-byte
    product-quantisation codes lost a third of the true neighbours of real questions at a million chunks, and the
    refine step could not win them back (docs/benchmarks.md)."""
    return IvfParams(max(1, round(math.sqrt(rows) / 4)))


def recall_at_k(approximate: list[list[str]], exact: list[list[str]]) -> float:
    """Mean share of each exact top-k that the approximate top-k also holds."""
    shares = [len(set(a) & set(e)) / len(e) for a, e in zip(approximate, exact) if e]
    return sum(shares) / len(shares) if shares else 1.0
