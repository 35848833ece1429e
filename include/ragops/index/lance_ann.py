"""The IVF-SQ index that a large LanceDB collection keeps on its vectors: built, kept current and rebuilt here.

After every write (`LanceStore._after_write`) `maintain` decides: below the threshold nothing (exact search); at it
a first build; afterwards `optimize` (called by the store for the full-text index too) has already folded the new
rows into the index with the trained centroids. Rows the index does not hold yet are searched exactly by LanceDB
and merged in, so a fresh chunk is found at once. The index is retrained when it covers too small a share of the
rows, when the collection has grown to want twice the partitions it was trained with (optimize adds rows to the
trained partitions, which then grow and make every query read more), or when the recall measured on a sample against
an exact search falls below the floor.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
from lancedb.index import IvfSq

from ragops.index.ann import AnnKnob, AnnPolicy, ivf_params, recall_at_k

log = logging.getLogger(__name__)
VECTOR_INDEX = "vector_idx"  # LanceDB's name for an index on the column `vector`
RECALL_K = 10
PARTITIONS_KEY = "ragops:ann_partitions"
GROWTH = 2  # retrain once the rows want this many times the partitions the index has: 4x the rows it was trained on


@dataclass
class AnnReport:
    """What `maintain` found and did; the store logs it and keeps the last one (`LanceStore.ann_report`)."""

    action: str  # none | built | absorbed | rebuilt | dropped
    rows: int
    indexed_share: float | None = None
    recall: float | None = None
    reason: str = ""
    params: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def has_vector_index(table) -> bool:
    return any(index.name == VECTOR_INDEX for index in table.list_indices())


def indexed_share(table, rows: int) -> float:
    stats = table.index_stats(VECTOR_INDEX)
    if stats is None or rows == 0:
        return 0.0
    return min(1.0, stats.num_indexed_rows / rows)


def build(table, rows: int) -> dict:
    params = ivf_params(rows)
    table.create_index("vector", config=IvfSq(distance_type="cosine", num_partitions=params.num_partitions),
                       replace=True)
    # LanceDB reports no partition count: kept on the column, so a later write sees when the collection outgrew it
    table.update_field_metadata({"path": "vector", "metadata": {PARTITIONS_KEY: str(params.num_partitions)}})
    return asdict(params)


def built_partitions(table) -> int | None:
    """The partitions the current index was trained with; None for an index built before they were recorded."""
    metadata = table.schema.field("vector").metadata or {}
    value = metadata.get(PARTITIONS_KEY.encode())
    return int(value) if value and value.isdigit() else None


def dense_query(table, vector: np.ndarray, policy: AnnPolicy, knob: AnnKnob | None, indexed: bool):
    """The dense query: exact below the threshold; through the index, refined with full vectors, above it."""
    query = table.search(vector).distance_type("cosine")
    if indexed:
        chosen = policy.knob(knob)
        query = query.nprobes(chosen.nprobes).refine_factor(chosen.refine_factor)
    return query


def measure_recall(table, policy: AnnPolicy, rows: int, seed: int) -> float:
    """recall@10 of the index against an exact scan, on `recall_sample` queries made from stored vectors.

    Each query is a stored vector moved a little at random: near real content, as a question is, but none of it
    exactly. (A point between two unrelated chunks would have no clear neighbours, and the measure would be noise.)
    """
    rng = np.random.default_rng(seed)
    offsets = rng.integers(0, rows, size=policy.recall_sample).tolist()
    stored = table.take_offsets(offsets).select(["vector"]).to_arrow()["vector"].to_numpy(zero_copy_only=False)
    vectors = np.stack(stored).astype(np.float32)
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-12)
    queries = vectors + 0.3 * rng.normal(size=vectors.shape).astype(np.float32) / np.sqrt(vectors.shape[1])
    approximate, exact = [], []
    for query in queries:
        base = table.search(query).distance_type("cosine").select(["chunk_id", "_distance"]).limit(RECALL_K)
        exact.append([r["chunk_id"] for r in base.bypass_vector_index().to_list()])
        approx = table.search(query).distance_type("cosine").select(["chunk_id", "_distance"]).limit(RECALL_K)
        approx = approx.nprobes(policy.nprobes).refine_factor(policy.refine_factor)
        approximate.append([r["chunk_id"] for r in approx.to_list()])
    return recall_at_k(approximate, exact)


def maintain(table, policy: AnnPolicy, *, built_now: bool = False) -> AnnReport:
    """Bring the vector index of `table` in line with `policy` after a write (see the module docstring)."""
    rows = table.count_rows()
    present = has_vector_index(table)
    if not policy.wants_index(rows, present):
        if present:
            table.drop_index(VECTOR_INDEX)
            return _logged(AnnReport("dropped", rows, reason=f"{rows} rows, under half of {policy.min_rows}"))
        return AnnReport("none", rows, reason=f"{rows} rows < {policy.min_rows}: exact search")
    if not present or built_now:
        params = build(table, rows)
        return _logged(AnnReport("built", rows, indexed_share(table, rows), reason="first build", params=params))
    share = indexed_share(table, rows)
    if share < policy.min_indexed_share:
        params = build(table, rows)
        return _logged(AnnReport("rebuilt", rows, indexed_share(table, rows), params=params,
                                 reason=f"the index held {share:.3f} of the rows < {policy.min_indexed_share}"))
    built, wanted = built_partitions(table), ivf_params(rows).num_partitions
    if built and wanted >= GROWTH * built:  # optimize only adds rows to the trained partitions, which grow and slow
        params = build(table, rows)
        return _logged(AnnReport("rebuilt", rows, indexed_share(table, rows), params=params,
                                 reason=f"{rows} rows want {wanted} partitions; the index has {built} partitions"))
    if policy.recall_sample <= 0:
        return AnnReport("absorbed", rows, share)
    recall = measure_recall(table, policy, rows, seed=table.version)
    if recall < policy.recall_floor:
        params = build(table, rows)
        after = measure_recall(table, policy, rows, seed=table.version)
        return _logged(AnnReport("rebuilt", rows, indexed_share(table, rows), after, params=params,
                                 reason=f"measured recall@10 {recall:.3f} < {policy.recall_floor}"))
    return AnnReport("absorbed", rows, share, recall)


def _logged(report: AnnReport) -> AnnReport:
    log.info("vector index %s: %s", report.action, report.to_dict())
    return report
