"""The embedded LanceDB backend: one directory under RAGOPS_HOME, native BM25 full-text index, versions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Sequence

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.index import FTS

from ragops.errors import StoreUnavailable
from ragops.index import IndexedChunk, SearchHit, SearchMode

# Old versions stay readable this long, so a release can pin one and a rollback can return to it.
KEEP_VERSIONS = timedelta(days=30)
COLUMNS = ["chunk_id", "doc_uri", "chunk_hash", "ordinal", "heading", "title", "text"]


def _quote(values: Sequence[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


class LanceStore:
    def __init__(self, directory: Path | str, collection: str = "chunks"):
        self.directory = Path(directory)
        self.collection = collection
        try:
            self.db = lancedb.connect(str(self.directory))
        except (OSError, ValueError) as exc:
            raise StoreUnavailable(f"cannot open the LanceDB index at {self.directory}: {exc}") from exc
        self._table = None
        self._pinned: int | None = None

    def _schema(self, dim: int) -> pa.Schema:
        return pa.schema(
            [
                ("chunk_id", pa.string()),
                ("doc_uri", pa.string()),
                ("chunk_hash", pa.string()),
                ("ordinal", pa.int32()),
                ("heading", pa.string()),
                ("title", pa.string()),
                ("text", pa.string()),
                ("vector", pa.list_(pa.float32(), dim)),
            ]
        )

    @property
    def table(self):
        if self._table is None:
            try:
                self._table = self.db.open_table(self.collection)
            except (FileNotFoundError, ValueError) as exc:
                raise StoreUnavailable(f"the index collection {self.collection!r} does not exist yet") from exc
            except (OSError, RuntimeError) as exc:  # lance reports a corrupt manifest as RuntimeError
                raise StoreUnavailable(f"cannot open index collection {self.collection!r}: {exc}") from exc
        return self._table

    def exists(self) -> bool:
        return self.collection in self.db.list_tables().tables

    def _rows(self, chunks: Sequence[IndexedChunk]) -> pa.Table:
        dim = int(chunks[0].vector.shape[0])
        data = {c: [getattr(ch, c) for ch in chunks] for c in COLUMNS}
        vectors = np.stack([ch.vector for ch in chunks]).astype(np.float32)
        data["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim)
        return pa.Table.from_pydict(data, schema=self._schema(dim))

    def _after_write(self) -> int:
        table = self.table
        if not any(index.index_type == "FTS" for index in table.list_indices()):
            table.create_index("text", config=FTS(with_position=False))
        else:
            table.optimize(cleanup_older_than=KEEP_VERSIONS)  # adds the new rows to the FTS index
        return table.version

    def apply(self, upserts: Sequence[IndexedChunk], replace_docs: Sequence[str], delete_docs: Sequence[str]) -> int:
        touched = sorted(set(replace_docs) | set(delete_docs))
        if not self.exists():
            if not upserts:
                raise StoreUnavailable("cannot create an empty index collection")
            self._table = self.db.create_table(self.collection, self._rows(upserts))
            return self._after_write()
        if upserts:
            merge = self.table.merge_insert("chunk_id").when_matched_update_all().when_not_matched_insert_all()
            if touched:
                merge = merge.when_not_matched_by_source_delete(f"doc_uri IN ({_quote(touched)})")
            merge.execute(self._rows(upserts))  # one atomic commit: upserts and deletions together
        elif touched:
            self.table.delete(f"doc_uri IN ({_quote(touched)})")
        else:
            return self.table.version
        return self._after_write()

    def rebuild(self, chunks: Sequence[IndexedChunk]) -> int:
        self._table = self.db.create_table(self.collection, self._rows(chunks), mode="overwrite")
        self._table.create_index("text", config=FTS(with_position=False), replace=True)
        return self._table.version

    def search(self, query: str, vector: np.ndarray | None, k: int, mode: SearchMode = "hybrid") -> list[SearchHit]:
        try:
            if mode == "dense":
                return [self._hit(r) for r in self._dense(vector, k)]
            if mode == "bm25":
                return [self._hit(r) for r in self._bm25(query, k)]
            # Fuse wider candidate lists than k, so a passage ranked k+1 by one retriever still counts. The fusion
            # is done here rather than by lancedb's hybrid query, which cannot project the score columns we keep.
            depth = max(k * 3, 20)
            return reciprocal_rank_fusion(self._dense(vector, depth), self._bm25(query, depth), k)
        except (OSError, RuntimeError, ValueError, KeyError) as exc:  # Value/KeyError: a collection of another schema
            raise StoreUnavailable(f"index search failed: {exc}") from exc

    def _dense(self, vector: np.ndarray, limit: int) -> list[dict]:
        return self.table.search(vector).distance_type("cosine").select(COLUMNS + ["_distance"]).limit(limit).to_list()

    def _bm25(self, query: str, limit: int) -> list[dict]:
        return self.table.search(query, query_type="fts").select(COLUMNS + ["_score"]).limit(limit).to_list()

    @staticmethod
    def _hit(row: dict, score: float | None = None) -> SearchHit:
        similarity = 1.0 - float(row["_distance"]) if row.get("_distance") is not None else None
        if score is None:
            score = similarity if similarity is not None else float(row.get("_score", 0.0))
        return SearchHit(row["chunk_id"], row["doc_uri"], float(score), row["text"], row["heading"], row["title"], similarity)

    def document(self, doc_uri: str) -> list[SearchHit]:
        try:
            rows = self.table.search().where(f"doc_uri = {_quote([doc_uri])}").select(COLUMNS).limit(100_000).to_list()
        except (OSError, RuntimeError) as exc:
            raise StoreUnavailable(f"index read failed: {exc}") from exc
        rows.sort(key=lambda r: r["ordinal"])
        return [SearchHit(r["chunk_id"], r["doc_uri"], 1.0, r["text"], r["heading"], r["title"]) for r in rows]

    def count(self) -> int:
        return self.table.count_rows() if self.exists() else 0

    def chunk_ids(self) -> set[str]:
        return {r["chunk_id"] for r in self.rows(["chunk_id"])}

    def doc_uris(self) -> set[str]:
        return {r["doc_uri"] for r in self.rows(["doc_uri"])}

    def rows(self, columns: Sequence[str]) -> list[dict]:
        if not self.exists():
            return []
        return self.table.to_arrow().select(list(columns)).to_pylist()

    def drop(self) -> None:
        if self.exists():
            self.db.drop_table(self.collection)
        self._table = None

    def close(self) -> None:
        self._table = None  # an embedded directory: nothing stays open between calls

    def version(self) -> int:
        return self.table.version

    def checkout(self, version: int) -> None:
        try:
            self.table.checkout(version)
        except (OSError, RuntimeError, ValueError) as exc:
            raise StoreUnavailable(f"cannot read version {version} of index collection {self.collection!r}: {exc}") from exc
        self._pinned = version


def reciprocal_rank_fusion(dense: list[dict], sparse: list[dict], k: int, constant: int = 60) -> list[SearchHit]:
    """RRF (Cormack et al. 2009): score = sum of 1 / (constant + rank) over the lists a passage appears in."""
    scores: dict[str, float] = {}
    rows: dict[str, dict] = {}
    for ranked in (dense, sparse):
        for rank, row in enumerate(ranked, start=1):
            scores[row["chunk_id"]] = scores.get(row["chunk_id"], 0.0) + 1.0 / (constant + rank)
            rows.setdefault(row["chunk_id"], row)  # the dense row comes first and carries the similarity
    best = sorted(scores, key=lambda cid: (-scores[cid], cid))[:k]
    return [LanceStore._hit(rows[cid], scores[cid]) for cid in best]
