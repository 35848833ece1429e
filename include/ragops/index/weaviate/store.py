"""The production backend on Weaviate (weaviate-client v4): every index version is its own collection.

A write never touches a collection that readers use: it copies what the previous version keeps (exact matches on
ids and URIs), adds the new chunks, waits until the vector index holds them (for at most
RAGOPS_WEAVIATE_INDEX_WAIT_S), checks the count, and only then returns the new version. A failed write deletes its
half-built collection. Old versions are pruned by the retention policy (`ragops.ingest.retention`), never by a
write. Pinned reads go to the version's own collection, so a reader sees one version whole while refreshes go on.
The alias that names the live version is moved by `WeaviateCatalog.promote` (refreshes, promotion, rollback), never
by a write.
"""

from __future__ import annotations

import logging
from typing import Iterator, Sequence

import numpy as np

from ragops.errors import StoreUnavailable
from ragops.index import IndexedChunk, SearchHit, SearchMode
from ragops.index.ann import AnnKnob
from ragops.index.fusion import depth, reciprocal_rank_fusion, to_hit
from ragops.index.weaviate.batch import write_objects
from ragops.index.weaviate.catalog import weaviate_errors
from ragops.index.weaviate.indexing import wait_until_indexed
from ragops.index.vectors import checked_query, checked_rows
from ragops.index.weaviate.schema import (PROPS, SEARCHED, VECTOR, check_collection, collection_config, hnsw_ef,
                                          physical, survivors)

log = logging.getLogger(__name__)
QUERY_LIMIT = 10_000  # Weaviate's default QUERY_MAXIMUM_RESULTS


def to_object(chunk: IndexedChunk) -> tuple[str, dict, dict[str, list[float]]]:
    from weaviate.util import generate_uuid5

    properties = {p: getattr(chunk, p) for p in PROPS}
    return generate_uuid5(chunk.chunk_id), properties, {VECTOR: np.asarray(chunk.vector, dtype=np.float32).tolist()}


def _props(obj, names: Sequence[str] = PROPS) -> dict:
    """An object's properties; Weaviate returns an empty text as null, LanceDB as ''."""
    values = {p: obj.properties.get(p) for p in names}
    return {p: ("" if v is None and p != "ordinal" else v) for p, v in values.items()}


def to_row(obj, **metadata) -> dict:
    """A query result as the row shape both backends fuse (index/fusion.py)."""
    return _props(obj) | metadata


def _vector(obj) -> list[float] | None:
    vector = obj.vector
    return vector.get(VECTOR) if isinstance(vector, dict) else vector


class WeaviateStore:
    def __init__(self, catalog, collection: str = "chunks"):
        self.catalog = catalog
        self.collection = check_collection(collection)
        self._pinned: int | None = None
        self._closed = False
        catalog.acquire()

    # -- which Weaviate collection ------------------------------------------------------------------------------
    def _client(self):
        if self._closed:
            raise StoreUnavailable(f"the index store on {self.collection!r} was closed")
        return self.catalog.client()

    def _versions(self) -> list[int]:
        self._client()
        return self.catalog.versions(self.collection)

    def _read_version(self) -> int | None:
        if self._pinned is not None:
            return self._pinned
        versions = self._versions()
        return versions[-1] if versions else None

    def _reading(self):
        version = self._read_version()
        if version is None:
            raise StoreUnavailable(f"the index collection {self.collection!r} does not exist yet")
        return self._client().collections.use(physical(self.catalog.prefix, self.collection, version))

    def version(self) -> int:
        version = self._read_version()
        if version is None:
            raise StoreUnavailable(f"the index collection {self.collection!r} does not exist yet")
        return version

    def checkout(self, version: int) -> None:
        self._client()
        if not self.catalog.exists(self.collection, version):
            raise StoreUnavailable(f"version {version} of the index collection {self.collection!r} is gone")
        self._pinned = version

    def exists(self) -> bool:
        return bool(self._versions())

    # -- writes: a new collection per version --------------------------------------------------------------------
    def _writable(self) -> list[int]:
        self.catalog.writing(f"write the index collection {self.collection!r}")
        if self._pinned is not None:
            raise StoreUnavailable(f"the store on {self.collection!r} is pinned to version {self._pinned}: read-only")
        return self._versions()

    def apply(self, upserts: Sequence[IndexedChunk], replace_docs: Sequence[str], delete_docs: Sequence[str]) -> int:
        versions = self._writable()
        base = versions[-1] if versions else None
        touched = set(replace_docs) | set(delete_docs)
        if base is None and not upserts:
            raise StoreUnavailable("cannot create an empty index collection")
        if base is not None and not upserts and not touched:
            return base
        if upserts:
            checked_rows([c.vector for c in upserts], [c.chunk_id for c in upserts])
        fresh = {c.chunk_id: c for c in upserts}  # one object per chunk id, as an upsert by id means

        def objects() -> Iterator[tuple[str, dict, dict[str, list[float]]]]:
            if base is not None:
                source = self._client().collections.use(physical(self.catalog.prefix, self.collection, base))
                kept = source.iterator(include_vector=True, return_properties=PROPS)
                for obj in survivors(kept, touched, fresh):
                    yield str(obj.uuid), _props(obj), {VECTOR: _vector(obj)}
            for chunk in fresh.values():
                yield to_object(chunk)

        return self._write_version((base or 0) + 1, objects())

    def rebuild(self, chunks: Sequence[IndexedChunk]) -> int:
        versions = self._writable()
        if chunks:
            checked_rows([c.vector for c in chunks], [c.chunk_id for c in chunks])
        fresh = {c.chunk_id: c for c in chunks}
        return self._write_version((versions[-1] if versions else 0) + 1, (to_object(c) for c in fresh.values()))

    def _write_version(self, version: int, objects) -> int:
        name = physical(self.catalog.prefix, self.collection, version)
        client = self._client()
        with weaviate_errors(f"cannot create the Weaviate collection {name}"):
            target = client.collections.create(**collection_config(name, ef=self.catalog.ann.ef))
        try:
            with weaviate_errors(f"writing {name} failed"):
                written = write_objects(target, objects)
                wait_until_indexed(target, self.catalog.index_wait_s)
                held = target.aggregate.over_all(total_count=True).total_count
            if held != written:
                raise StoreUnavailable(f"{name} holds {held} objects after {written} were written")
        except BaseException:
            self._discard(version)
            raise
        return version

    def _discard(self, version: int) -> None:
        """Delete a version nobody has seen, so nothing half-written is left behind."""
        try:
            self.catalog.delete(self.collection, version)
        except StoreUnavailable as exc:
            log.error("could not delete the half-written version %d of %s: %s", version, self.collection, exc)

    # -- reads --------------------------------------------------------------------------------------------------
    def search(self, query: str, vector: np.ndarray | None, k: int, mode: SearchMode = "hybrid", *,
               ann: AnnKnob | None = None) -> list[SearchHit]:
        if mode != "bm25":
            vector = checked_query(vector)
        collection = self._reading()
        if ann is not None and ann.ef is not None and mode != "bm25":
            self._tune(collection, ann.ef)
        with weaviate_errors("Weaviate search failed"):
            if mode == "dense":
                return [to_hit(r) for r in self._dense(collection, vector, k)]
            if mode == "bm25":
                return [to_hit(r) for r in self._bm25(collection, query, k)]
            # Both queries and the fusion as on LanceDB, so scores and similarities mean the same on both backends
            # (Weaviate's own hybrid query scales and fuses differently and reports no cosine similarity).
            return reciprocal_rank_fusion(self._dense(collection, vector, depth(k)),
                                          self._bm25(collection, query, depth(k)), k)

    def _tune(self, collection, ef: int) -> None:
        """Weaviate takes no ef per query: it is the version's HNSW setting, so set it there (for every reader).

        What was last set is remembered by the catalogue, shared by every store of the process: a store's own memory
        went stale as soon as another store set another ef, and its queries then ran at that one. Another process may
        still change it between two queries; docs/reliability.md (Issue 24) says why the knob is for one tuner only.
        """
        with self.catalog.ef_lock:
            if self.catalog.ef_set.get(collection.name) == ef:
                return
            self.catalog.writing(f"set the HNSW ef of {collection.name} (set it when the version is written: "
                                 "RAGOPS_ANN_EF)")
            with weaviate_errors(f"cannot set the HNSW ef of {collection.name}"):
                collection.config.update(vector_config=hnsw_ef(ef))
            self.catalog.ef_set[collection.name] = ef

    @staticmethod
    def _dense(collection, vector: np.ndarray, limit: int) -> list[dict]:
        from weaviate.classes.query import MetadataQuery

        result = collection.query.near_vector(near_vector=np.asarray(vector, dtype=np.float32).tolist(), limit=limit,
                                              target_vector=VECTOR, return_properties=PROPS,
                                              return_metadata=MetadataQuery(distance=True))
        return [to_row(o, _distance=o.metadata.distance) for o in result.objects]

    @staticmethod
    def _bm25(collection, query: str, limit: int) -> list[dict]:
        from weaviate.classes.query import MetadataQuery

        result = collection.query.bm25(query=query, query_properties=SEARCHED, limit=limit, return_properties=PROPS,
                                       return_metadata=MetadataQuery(score=True))
        return [to_row(o, _score=o.metadata.score) for o in result.objects]

    def document(self, doc_uri: str) -> list[SearchHit]:
        from weaviate.classes.query import Filter

        collection = self._reading()
        with weaviate_errors(f"cannot read {doc_uri} from Weaviate"):
            result = collection.query.fetch_objects(filters=Filter.by_property("doc_uri").equal(doc_uri),
                                                    limit=QUERY_LIMIT, return_properties=PROPS)
        rows = sorted((to_row(o) for o in result.objects), key=lambda r: r["ordinal"])
        return [SearchHit(r["chunk_id"], r["doc_uri"], 1.0, r["text"], r["heading"], r["title"]) for r in rows]

    def count(self) -> int:
        if self._read_version() is None:
            return 0
        with weaviate_errors("cannot count the Weaviate collection"):
            return int(self._reading().aggregate.over_all(total_count=True).total_count or 0)

    def chunk_ids(self) -> set[str]:
        return {r["chunk_id"] for r in self.rows(["chunk_id"])}

    def rows(self, columns: Sequence[str]) -> list[dict]:
        return [row for batch in self.scan(columns) for row in batch]

    def scan(self, columns: Sequence[str], batch_rows: int = 1024) -> Iterator[list[dict]]:
        if self._read_version() is None:
            return
        unknown = set(columns) - set(PROPS) - {"vector"}
        if unknown:
            raise StoreUnavailable(f"unknown index columns: {sorted(unknown)}")
        wanted = [c for c in columns if c != "vector"]
        with weaviate_errors("cannot read the Weaviate collection"):
            batch: list[dict] = []
            for obj in self._reading().iterator(include_vector="vector" in columns, return_properties=wanted):
                row = _props(obj, wanted)
                if "vector" in columns:
                    row["vector"] = _vector(obj)
                batch.append(row)
                if len(batch) >= batch_rows:
                    yield batch
                    batch = []
            if batch:
                yield batch

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def drop(self) -> None:
        self.catalog.writing(f"drop the index collection {self.collection!r}")
        versions = self._versions()
        live = self.catalog.live()
        if live and live[0] == self.collection:
            raise StoreUnavailable(f"{self.collection!r} is live; promote another collection before dropping it")
        for version in versions:
            self.catalog.delete(self.collection, version)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.catalog.release()
