"""The production backend on Weaviate (weaviate-client v4): one collection per index version lineage.

Weaviate keeps no table versions, so this store counts its own writes in a small `RagopsMeta` collection;
`checkout` is accepted for the current version only. Blue/green isolation comes from separate collections, which
is how the reindex DAG uses every backend. Exercised by the conformance suite when RAGOPS_WEAVIATE_URL is set.
"""

from __future__ import annotations

from typing import Sequence
from urllib.parse import urlparse

import numpy as np

from ragops.errors import StoreUnavailable
from ragops.index import IndexedChunk, SearchHit, SearchMode

PROPS = ["chunk_id", "doc_uri", "chunk_hash", "ordinal", "heading", "title", "text"]
META = "RagopsMeta"


class WeaviateStore:
    def __init__(self, url: str | None, collection: str = "chunks", grpc_port: int = 50051):
        import weaviate

        if not url:
            raise StoreUnavailable("RAGOPS_STORE=weaviate needs RAGOPS_WEAVIATE_URL")
        parsed = urlparse(url)
        secure = parsed.scheme == "https"
        try:
            self.client = weaviate.connect_to_custom(
                http_host=parsed.hostname, http_port=parsed.port or (443 if secure else 8080), http_secure=secure,
                grpc_host=parsed.hostname, grpc_port=grpc_port, grpc_secure=secure)
        except Exception as exc:  # noqa: BLE001 - the client raises several connection error types
            raise StoreUnavailable(f"cannot reach Weaviate at {url}: {exc}") from exc
        self.collection = collection
        self.name = collection[:1].upper() + collection[1:]  # Weaviate class names start upper-case
        self._pinned: int | None = None

    # -- schema and versions --------------------------------------------------------------------------
    def _ensure(self):
        from weaviate.classes.config import Configure, DataType, Property, VectorDistances

        if not self.client.collections.exists(self.name):
            text = [Property(name=p, data_type=DataType.TEXT) for p in PROPS if p != "ordinal"]
            self.client.collections.create(
                self.name, properties=text + [Property(name="ordinal", data_type=DataType.INT)],
                vector_config=Configure.Vectors.self_provided(
                    vector_index_config=Configure.VectorIndex.hnsw(distance_metric=VectorDistances.COSINE)))
        if not self.client.collections.exists(META):
            from weaviate.classes.config import Property as P

            self.client.collections.create(META, properties=[P(name="collection", data_type=DataType.TEXT),
                                                             P(name="version", data_type=DataType.INT)],
                                           vector_config=Configure.Vectors.self_provided())
        return self.client.collections.get(self.name)

    def _meta_uuid(self) -> str:
        from weaviate.util import generate_uuid5

        return generate_uuid5(f"ragops-meta:{self.name}")

    def version(self) -> int:
        if not self.client.collections.exists(META):
            return 0
        obj = self.client.collections.get(META).query.fetch_object_by_id(self._meta_uuid())
        return int(obj.properties["version"]) if obj else 0

    def _bump(self) -> int:
        version = self.version() + 1
        meta = self.client.collections.get(META)
        properties = {"collection": self.name, "version": version}
        if meta.query.fetch_object_by_id(self._meta_uuid()):
            meta.data.replace(uuid=self._meta_uuid(), properties=properties)
        else:
            meta.data.insert(uuid=self._meta_uuid(), properties=properties)
        return version

    def checkout(self, version: int) -> None:
        current = self.version()
        if version > current:
            raise StoreUnavailable(f"{self.name} is at version {current}, not {version}")
        self._pinned = version  # reads see the current state: Weaviate keeps no history

    # -- writes -------------------------------------------------------------------------------------
    def _write(self, collection, chunks: Sequence[IndexedChunk]) -> None:
        from weaviate.util import generate_uuid5

        with collection.batch.fixed_size(batch_size=200) as batch:
            for c in chunks:
                batch.add_object(properties={p: getattr(c, p) for p in PROPS}, uuid=generate_uuid5(c.chunk_id),
                                 vector=np.asarray(c.vector, dtype=np.float32).tolist())
        failed = collection.batch.failed_objects
        if failed:
            raise StoreUnavailable(f"{len(failed)} chunks were not written to Weaviate: {failed[0].message}")

    def apply(self, upserts: Sequence[IndexedChunk], replace_docs: Sequence[str], delete_docs: Sequence[str]) -> int:
        from weaviate.classes.query import Filter

        collection = self._ensure()
        keep = {c.chunk_id for c in upserts}
        if delete_docs:
            collection.data.delete_many(where=Filter.by_property("doc_uri").contains_any(list(delete_docs)))
        if replace_docs:
            stale = [o.properties["chunk_id"] for o in collection.iterator(return_properties=["chunk_id", "doc_uri"])
                     if o.properties["doc_uri"] in set(replace_docs) and o.properties["chunk_id"] not in keep]
            for start in range(0, len(stale), 500):
                collection.data.delete_many(where=Filter.by_property("chunk_id").contains_any(stale[start:start + 500]))
        if upserts:
            self._write(collection, upserts)
        return self._bump()

    def rebuild(self, chunks: Sequence[IndexedChunk]) -> int:
        if self.client.collections.exists(self.name):
            self.client.collections.delete(self.name)
        self._write(self._ensure(), chunks)
        return self._bump()

    # -- reads --------------------------------------------------------------------------------------
    def _hit(self, obj, score: float | None, query_vector: np.ndarray | None) -> SearchHit:
        p = obj.properties
        similarity = None
        vector = (obj.vector or {}).get("default") if isinstance(obj.vector, dict) else obj.vector
        if query_vector is not None and vector is not None:
            similarity = float(np.dot(np.asarray(vector, dtype=np.float32), query_vector))
        return SearchHit(p["chunk_id"], p["doc_uri"], float(score if score is not None else similarity or 0.0), p["text"],
                         p.get("heading", ""), p.get("title", ""), similarity)

    def search(self, query: str, vector: np.ndarray | None, k: int, mode: SearchMode = "hybrid") -> list[SearchHit]:
        from weaviate.classes.query import HybridFusion, MetadataQuery

        collection = self.client.collections.get(self.name)
        try:
            if mode == "dense":
                result = collection.query.near_vector(near_vector=vector.tolist(), limit=k, include_vector=True,
                                                      return_metadata=MetadataQuery(distance=True))
                return [self._hit(o, 1 - o.metadata.distance, vector) for o in result.objects]
            if mode == "bm25":
                result = collection.query.bm25(query=query, limit=k, return_metadata=MetadataQuery(score=True))
                return [self._hit(o, o.metadata.score, None) for o in result.objects]
            result = collection.query.hybrid(query=query, vector=vector.tolist(), alpha=0.5, limit=k,
                                             fusion_type=HybridFusion.RANKED, include_vector=True,
                                             return_metadata=MetadataQuery(score=True))
            return [self._hit(o, o.metadata.score, vector) for o in result.objects]
        except Exception as exc:  # noqa: BLE001 - transport and query errors mean the store is unavailable
            raise StoreUnavailable(f"Weaviate search failed: {exc}") from exc

    def document(self, doc_uri: str) -> list[SearchHit]:
        from weaviate.classes.query import Filter

        result = self.client.collections.get(self.name).query.fetch_objects(
            filters=Filter.by_property("doc_uri").equal(doc_uri), limit=10_000)
        return [self._hit(o, 1.0, None) for o in sorted(result.objects, key=lambda o: o.properties["ordinal"])]

    def count(self) -> int:
        if not self.client.collections.exists(self.name):
            return 0
        return int(self.client.collections.get(self.name).aggregate.over_all(total_count=True).total_count or 0)

    def chunk_ids(self) -> set[str]:
        if not self.client.collections.exists(self.name):
            return set()
        return {o.properties["chunk_id"] for o in self.client.collections.get(self.name).iterator(return_properties=["chunk_id"])}

    def exists(self) -> bool:
        return self.client.collections.exists(self.name)

    def rows(self, columns: Sequence[str]) -> list[dict]:
        if not self.exists():
            return []
        wanted = [c for c in columns if c != "vector"]
        out = []
        for o in self.client.collections.get(self.name).iterator(return_properties=wanted,
                                                                  include_vector="vector" in columns):
            row = {c: o.properties.get(c) for c in wanted}
            if "vector" in columns:
                row["vector"] = (o.vector or {}).get("default") if isinstance(o.vector, dict) else o.vector
            out.append(row)
        return out

    def drop(self) -> None:
        if self.client.collections.exists(self.name):
            self.client.collections.delete(self.name)

    def close(self) -> None:
        self.client.close()
