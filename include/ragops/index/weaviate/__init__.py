"""The production backend on Weaviate: a collection per index version, an alias as the live pointer."""

from ragops.index.weaviate.catalog import WeaviateCatalog, connect_url
from ragops.index.weaviate.store import WeaviateStore

__all__ = ["WeaviateCatalog", "WeaviateStore", "connect_url"]
