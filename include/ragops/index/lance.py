"""The embedded LanceDB backend: one directory under RAGOPS_HOME, native BM25 full-text index, table versions.

A collection is a table; its versions are Lance's table versions, so a pinned read is a checkout. The live pointer
is the registry's live index-version row: `promote` checks the target and the caller moves the row.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Collection, Iterable, Iterator, Sequence

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.index import FTS

from ragops.errors import StoreUnavailable
from ragops.index import IndexedChunk, SearchHit, SearchMode
from ragops.index.ann import AnnKnob, AnnPolicy
from ragops.index.fusion import COLUMNS, depth, reciprocal_rank_fusion, to_hit
from ragops.index.lance_ann import AnnReport, dense_query, has_vector_index, maintain
from ragops.index.vectors import checked_query, checked_rows

log = logging.getLogger(__name__)
# A write's optimize() (which adds the new rows to the FTS index) prunes nothing a reader may still need: versions are
# pruned by the one retention policy (ragops.ingest.retention through LanceCatalog.prune), as on Weaviate.
NO_CLEANUP = timedelta(days=36500)
KEEP_TAG = "ragops-keep-"  # the Lance tag on each version the retention policy keeps: `ragops-keep-<version>`


def _quote(values: Sequence[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _connect(directory: Path):
    try:
        return lancedb.connect(str(directory))
    except (OSError, ValueError) as exc:
        raise StoreUnavailable(f"cannot open the LanceDB index at {directory}: {exc}") from exc


class LanceCatalog:
    live_pointer = "registry"

    def __init__(self, directory: Path | str, ann: AnnPolicy | None = None):
        self.directory = Path(directory)
        self.ann = ann or AnnPolicy()

    def open(self, collection: str, version: int | None = None) -> LanceStore:
        store = LanceStore(self.directory, collection, ann=self.ann)
        if version is not None:
            store.checkout(version)
        return store

    def collections(self) -> list[str]:
        db, names, token = _connect(self.directory), [], None
        while True:
            page = db.list_tables(page_token=token)
            names += page.tables
            token = page.page_token
            if not token:
                return sorted(names)

    def promote(self, collection: str, version: int) -> None:
        store = self.open(collection, version)  # raises when the collection or the version is gone
        store.close()

    def _table(self, collection: str):
        try:
            return _connect(self.directory).open_table(collection)
        except (FileNotFoundError, ValueError):
            return None
        except (OSError, RuntimeError) as exc:
            raise StoreUnavailable(f"cannot open index collection {collection!r}: {exc}") from exc

    def _listed(self, table) -> list[dict]:
        try:
            return sorted(table.list_versions(), key=lambda v: int(v["version"]))
        except (OSError, RuntimeError) as exc:
            raise StoreUnavailable(f"cannot list the versions of {table.name!r}: {exc}") from exc

    def versions(self, collection: str) -> list[int]:
        """The versions of `collection` that can still be read (checked out); [] when it does not exist."""
        table = self._table(collection)
        return [] if table is None else [int(v["version"]) for v in self._listed(table)]

    def prune(self, collection: str, keep: Collection[int]) -> list[int]:
        """Delete every version of `collection` the retention policy does not keep (never the newest); return them.

        The same keep set as Weaviate's, not an age: each kept version carries a Lance tag (`ragops-keep-<v>`), so no
        cleanup by age, an operator's `optimize(cleanup_older_than=...)` included, can remove a version a release or
        the rollback window still reaches (Lance refuses such a cleanup); tags of versions no longer kept are removed.
        The others, Lance's intermediate versions of one write (merge, delete, index) among them, are cleaned by
        number with pylance's `cleanup_old_versions(versions=...)`. Versions someone else tagged are left alone.
        Files a failed write left are removed only after Lance's 7 days (`delete_unverified` stays off: a write in
        progress elsewhere would be damaged).
        """
        table = self._table(collection)
        if table is None:
            return []
        newest = table.version  # the newest a writer made: kept, like the newest after compaction
        try:
            table.optimize(cleanup_older_than=NO_CLEANUP)  # compact first: the versions it makes are pruned below
        except (OSError, RuntimeError, ValueError) as exc:
            raise StoreUnavailable(f"cannot compact {collection!r}: {exc}") from exc
        listed = [int(v["version"]) for v in self._listed(table)]
        wanted = (set(keep) & set(listed)) | {newest} | set(listed[-1:])
        doomed = [v for v in listed if v not in wanted]
        try:
            dataset = table.to_lance()
            _retag(dataset, wanted)
            if doomed:
                dataset.cleanup_old_versions(versions=doomed, error_if_tagged_old_versions=False)
        except (OSError, RuntimeError, ValueError) as exc:
            raise StoreUnavailable(f"cannot prune old versions of {collection!r}: {exc}") from exc
        after = set(self.versions(collection))
        lost = sorted(wanted - after)
        if lost:
            raise StoreUnavailable(f"pruning {collection!r} removed versions it had to keep: {lost}")
        return [v for v in listed if v not in after]

    def kept_tags(self, collection: str) -> dict[str, int]:
        """The retention tags of `collection`: {tag: version}."""
        table = self._table(collection)
        if table is None:
            return {}
        return {name: int(tag["version"]) for name, tag in table.tags.list().items() if name.startswith(KEEP_TAG)}

    def live(self) -> None:
        return None  # the registry's live row is the pointer

    def set_aside(self, collection: str) -> str:
        """Move a damaged collection out of the catalogue, every file kept; returns where it went.

        To `<home>/quarantine/lance/<name>-<UTC>.lance`: a rename within RAGOPS_HOME, atomic, nothing copied.
        """
        source = self.directory / f"{collection}.lance"
        if not source.is_dir():
            raise StoreUnavailable(f"the index collection {collection!r} has no directory at {source} to set aside")
        target_dir = self.directory.parent / "quarantine" / "lance"
        target = target_dir / f"{collection}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}.lance"
        try:  # the folder too: a full disk or a read-only home is the same store error as a failed rename
            target_dir.mkdir(parents=True, exist_ok=True)
            os.rename(source, target)
        except OSError as exc:
            raise StoreUnavailable(f"cannot move the index collection {collection!r} to {target}: {exc}") from exc
        return str(target)

    def close(self) -> None:
        pass  # an embedded directory: no connection outlives a call


def _retag(dataset, wanted: set[int]) -> None:
    """Tag exactly the `wanted` versions with KEEP_TAG (tags of other owners untouched)."""
    ours = {name: int(tag["version"]) for name, tag in dataset.tags.list().items() if name.startswith(KEEP_TAG)}
    for name, version in ours.items():
        if version not in wanted:
            dataset.tags.delete(name)
    for version in sorted(wanted - set(ours.values())):
        dataset.tags.create(f"{KEEP_TAG}{version}", version)


class LanceStore:
    def __init__(self, directory: Path | str, collection: str = "chunks", *, ann: AnnPolicy | None = None):
        self.directory = Path(directory)
        self.collection = collection
        self.ann = ann or AnnPolicy()
        self.ann_report: AnnReport | None = None  # what the last write did to the vector index
        self.db = _connect(self.directory)
        self._table = None
        self._indexed: tuple[int, bool] | None = None  # (table version, has a vector index)
        self._pinned: int | None = None
        self._closed = False

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
    def _tbl(self):
        if self._closed:
            raise StoreUnavailable(f"the index store on {self.collection!r} was closed")
        if self._table is None:
            try:
                self._table = self.db.open_table(self.collection)
            except (FileNotFoundError, ValueError) as exc:
                raise StoreUnavailable(f"the index collection {self.collection!r} does not exist yet") from exc
            except (OSError, RuntimeError) as exc:  # lance reports a corrupt manifest as RuntimeError
                raise StoreUnavailable(f"cannot open index collection {self.collection!r}: {exc}") from exc
        return self._table

    def exists(self) -> bool:
        if self._closed:
            raise StoreUnavailable(f"the index store on {self.collection!r} was closed")
        return self.collection in self.db.list_tables().tables

    def _writable(self) -> None:
        if self._closed:
            raise StoreUnavailable(f"the index store on {self.collection!r} was closed")
        if self._pinned is not None:
            raise StoreUnavailable(f"the store on {self.collection!r} is pinned to version {self._pinned}: read-only")

    def _rows(self, chunks: Sequence[IndexedChunk]) -> pa.Table:
        vectors = checked_rows([ch.vector for ch in chunks], [ch.chunk_id for ch in chunks])
        dim = int(vectors.shape[1])
        data = {c: [getattr(ch, c) for ch in chunks] for c in COLUMNS}
        data["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim)
        return pa.Table.from_pydict(data, schema=self._schema(dim))

    def _after_write(self, *, rebuilt: bool = False) -> int:
        table = self._tbl
        if rebuilt or not any(index.index_type == "FTS" for index in table.list_indices()):
            table.create_index("text", config=FTS(with_position=False), replace=True)
        else:
            table.optimize(cleanup_older_than=NO_CLEANUP)  # adds the new rows to the FTS and vector indexes
        try:
            self.ann_report = maintain(table, self.ann, built_now=rebuilt)
        except (OSError, RuntimeError, ValueError) as exc:  # the rows are committed; unindexed rows are searched exactly
            log.error("the vector index of %s could not be maintained (searches stay exact on what it lacks): %s",
                      self.collection, exc)
            self.ann_report = AnnReport("failed", table.count_rows(), reason=str(exc)[:500])
        self._indexed = None
        return table.version

    def apply(self, upserts: Sequence[IndexedChunk], replace_docs: Sequence[str], delete_docs: Sequence[str]) -> int:
        self._writable()
        touched = sorted(set(replace_docs) | set(delete_docs))
        if not self.exists():
            if not upserts:
                raise StoreUnavailable("cannot create an empty index collection")
            self._table = self.db.create_table(self.collection, self._rows(upserts))
            return self._after_write()
        if upserts:
            merge = self._tbl.merge_insert("chunk_id").when_matched_update_all().when_not_matched_insert_all()
            if touched:
                merge = merge.when_not_matched_by_source_delete(f"doc_uri IN ({_quote(touched)})")
            merge.execute(self._rows(upserts))  # one atomic commit: upserts and deletions together
        elif touched:
            self._tbl.delete(f"doc_uri IN ({_quote(touched)})")
        else:
            return self._tbl.version
        return self._after_write()

    def rebuild(self, chunks: Sequence[IndexedChunk]) -> int:
        return self.rebuild_from([chunks])

    def rebuild_from(self, batches: Iterable[Sequence[IndexedChunk]]) -> int:
        """`rebuild` from batches, so a large collection is never held in memory whole; indexed once, at the end."""
        self._writable()
        self._table = None
        for batch in batches:
            if not batch:
                continue
            if self._table is None:
                self._table = self.db.create_table(self.collection, self._rows(batch), mode="overwrite")
            else:
                self._table.add(self._rows(batch))
        if self._table is None:
            raise StoreUnavailable("cannot create an empty index collection")
        return self._after_write(rebuilt=True)

    def search(self, query: str, vector: np.ndarray | None, k: int, mode: SearchMode = "hybrid", *,
               ann: AnnKnob | None = None) -> list[SearchHit]:
        try:
            if mode == "dense":
                return [to_hit(r) for r in self._dense(vector, k, ann)]
            if mode == "bm25":
                return [to_hit(r) for r in self._bm25(query, k)]
            # Fused here rather than by lancedb's hybrid query, which cannot project the score columns we keep, and
            # so that the Weaviate backend can fuse exactly the same way (index/fusion.py).
            return reciprocal_rank_fusion(self._dense(vector, depth(k), ann), self._bm25(query, depth(k)), k)
        except (OSError, RuntimeError, ValueError, KeyError) as exc:  # Value/KeyError: a collection of another schema
            raise StoreUnavailable(f"index search failed: {exc}") from exc

    def _dense(self, vector: np.ndarray, limit: int, knob: AnnKnob | None = None) -> list[dict]:
        table = self._tbl
        vector = checked_query(vector, table.schema.field("vector").type.list_size)
        query = dense_query(table, vector, self.ann, knob, self._has_vector_index())
        return query.select(COLUMNS + ["_distance"]).limit(limit).to_list()

    def _has_vector_index(self) -> bool:
        """Whether the version read has an approximate index, looked up once per version."""
        table = self._tbl
        version = table.version
        if self._indexed is None or self._indexed[0] != version:
            self._indexed = (version, has_vector_index(table))
        return self._indexed[1]

    def _bm25(self, query: str, limit: int) -> list[dict]:
        return self._tbl.search(query, query_type="fts").select(COLUMNS + ["_score"]).limit(limit).to_list()

    def document(self, doc_uri: str) -> list[SearchHit]:
        try:
            rows = self._tbl.search().where(f"doc_uri = {_quote([doc_uri])}").select(COLUMNS).limit(100_000).to_list()
        except (OSError, RuntimeError) as exc:
            raise StoreUnavailable(f"index read failed: {exc}") from exc
        rows.sort(key=lambda r: r["ordinal"])
        return [SearchHit(r["chunk_id"], r["doc_uri"], 1.0, r["text"], r["heading"], r["title"]) for r in rows]

    def count(self) -> int:
        return self._tbl.count_rows() if self.exists() else 0

    def chunk_ids(self) -> set[str]:
        return {r["chunk_id"] for r in self.rows(["chunk_id"])}

    def rows(self, columns: Sequence[str]) -> list[dict]:
        if not self.exists():
            return []
        return self._tbl.to_arrow().select(list(columns)).to_pylist()

    def scan(self, columns: Sequence[str], batch_rows: int = 1024) -> Iterator[list[dict]]:
        if not self.exists():
            return
        for batch in self._tbl.search().select(list(columns)).limit(None).to_batches(batch_rows):
            yield batch.to_pylist()

    def drop(self) -> None:
        if self.exists():
            self.db.drop_table(self.collection)
        self._table = None

    def close(self) -> None:
        self._table, self._closed = None, True  # an embedded directory: no connection stays open between calls

    def version(self) -> int:
        return self._tbl.version

    def checkout(self, version: int) -> None:
        try:
            self._tbl.checkout(version)
        except (OSError, RuntimeError, ValueError) as exc:
            raise StoreUnavailable(
                f"cannot read version {version} of the index collection {self.collection!r}: {exc}") from exc
        self._pinned = version
