"""Remote embedding and rerank clients against a real HTTP server running tiny models the test builds itself."""

import numpy as np
import pytest

from model_servers import ModelServer, tiny_cross_encoder, tiny_sentence_transformer
from ragops.config import Settings
from ragops.errors import EmbeddingModelError
from ragops.models import Reranker
from ragops.models.remote import (RemoteEmbeddings, TEIReranker, endpoint_identity, parse_remote_name,
                                  remote_embeddings, remote_name, remote_reranker)
from support import free_port

TEXTS = ["refresh the index", "a cat on a mat", "the canary gate", "rate limits per key", "quarantined documents",
         "Slack outbox", "blue/green candidates"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from sentence_transformers import CrossEncoder, SentenceTransformer

    root = tmp_path_factory.mktemp("tiny-models")
    embedder = SentenceTransformer(str(tiny_sentence_transformer(root)), device="cpu", local_files_only=True)
    reranker = CrossEncoder(str(tiny_cross_encoder(root)), device="cpu", local_files_only=True)
    return embedder, reranker


@pytest.fixture
def server(models):
    server = ModelServer(*models)
    yield server
    server.close()


def _expected(models, texts=TEXTS):
    return models[0].encode(texts, normalize_embeddings=True, convert_to_numpy=True)


@pytest.mark.parametrize("protocol, path", [("openai", "/v1/embeddings"), ("tei", "/embed")])
def test_vectors_match_the_local_model_in_batches_with_the_key(server, models, protocol, path):
    client = RemoteEmbeddings(server.url, protocol, "tiny", api_key="sk-test", max_batch=3)
    vectors = client.embed(TEXTS)
    assert vectors.shape == (7, 32) and vectors.dtype == np.float32
    assert np.allclose(vectors, _expected(models), atol=1e-5)
    assert client.dim == 32
    assert [(p, len(body.get("input") or body.get("inputs"))) for p, body, _ in server.requests] == [(path, 3), (path, 3), (path, 1)]
    assert {auth for _, _, auth in server.requests} == {"Bearer sk-test"}
    first = server.requests[0][1]
    assert first == ({"model": "tiny", "input": TEXTS[:3]} if protocol == "openai"
                     else {"inputs": TEXTS[:3], "normalize": True, "truncate": True})


def test_an_openai_base_ending_in_v1_is_not_doubled(server, models):
    vectors = RemoteEmbeddings(server.url + "/v1/", "openai", "tiny").embed(TEXTS[:2])
    assert np.allclose(vectors, _expected(models, TEXTS[:2]), atol=1e-5)
    assert server.requests[0][0] == "/v1/embeddings" and server.requests[0][2] is None  # no key: no header


def test_nothing_to_embed_sends_nothing(server):
    assert RemoteEmbeddings(server.url, "tei", "tiny", dim=32).embed([]).shape == (0, 32)
    assert server.requests == []


@pytest.mark.parametrize("protocol", ["openai", "tei"])
@pytest.mark.parametrize("mode, problem", [
    ("error", "answered HTTP 500: {\"error\": \"CUDA out of memory\""),
    ("garbage", "answered with a body that is not JSON: '<html>502 Bad Gateway</html>'"),
    ("shape", "answered {'object': 'list'}, not"),
    ("short", "answered 1 vectors for 2 texts"),
    ("ragged", "vectors of inconsistent dimensions [31, 32] in one batch"),
    ("nan", "answered vectors holding NaN or infinity"),
])
def test_a_bad_answer_is_a_clear_error_naming_the_endpoint(server, protocol, mode, problem):
    server.mode = mode
    path = "/v1/embeddings" if protocol == "openai" else "/embed"
    with pytest.raises(EmbeddingModelError) as caught:
        RemoteEmbeddings(server.url, protocol, "tiny").embed(TEXTS[:2])
    assert f"the model endpoint {server.url}{path}" in str(caught.value)
    assert problem in str(caught.value)


def test_openai_indexes_must_cover_every_text_once(server):
    server.mode = "bad_index"
    with pytest.raises(EmbeddingModelError, match=r"answered the indexes \[0, 1, 0\] for 3 texts"):
        RemoteEmbeddings(server.url, "openai", "tiny").embed(TEXTS[:3])


def test_a_server_that_hangs_times_out_promptly(server):
    server.mode = "hang"  # answers only when released, which close() does: the timeout alone ends the call
    client = RemoteEmbeddings(server.url, "tei", "tiny", timeout_s=0.2)
    with pytest.raises(EmbeddingModelError, match=rf"{server.url}/embed did not answer within 0.2 s"):
        client.embed(TEXTS[:1])


def test_an_unreachable_endpoint_is_a_clear_error():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(EmbeddingModelError, match=rf"cannot reach the model endpoint {url}/embed: ConnectError"):
        RemoteEmbeddings(url, "tei", "tiny").embed(["x"])


def test_wrong_dimensions_are_refused_whether_configured_or_learned(server):
    with pytest.raises(EmbeddingModelError, match="answered 32-dimensional vectors, but 16 dimensions are expected"):
        RemoteEmbeddings(server.url, "tei", "tiny", dim=16).embed(TEXTS[:2])
    client = RemoteEmbeddings(server.url, "tei", "tiny")
    client.embed(TEXTS[:2])
    server.dim = 24  # the server now runs another model
    with pytest.raises(EmbeddingModelError, match="answered 24-dimensional vectors, but 32 dimensions are expected"):
        client.embed(TEXTS[:2])


def test_credentials_in_the_url_never_reach_an_error_or_a_name(server):
    server.mode = "error"
    url = server.url.replace("http://", "http://svc:s3cret@")
    with pytest.raises(EmbeddingModelError) as caught:
        RemoteEmbeddings(url, "openai", "tiny").embed(["x"])
    assert "s3cret" not in str(caught.value) and "http://svc:***@127.0.0.1" in str(caught.value)
    assert endpoint_identity("https://k:p@h/v1/") == "https://h/v1"
    assert endpoint_identity("https://h/v1?api_key=s3cret") == "https://h/v1?api_key=***"
    assert "s3cret" not in RemoteEmbeddings(url, "openai", "tiny").name
    assert "s3cret" not in RemoteEmbeddings(server.url + "?api_key=s3cret", "openai", "tiny").name


def test_a_remote_name_carries_model_and_endpoint_and_parses_back():
    name = remote_name("BAAI/bge-small-en-v1.5", "tei", "http://user:pw@gpu-1:8080/")
    assert name == "BAAI/bge-small-en-v1.5@tei+http://gpu-1:8080"
    assert parse_remote_name(name) == ("BAAI/bge-small-en-v1.5", "tei", "http://gpu-1:8080")
    assert parse_remote_name("all-MiniLM-L6-v2") is None and parse_remote_name("/models/bge@v2") is None
    with pytest.raises(EmbeddingModelError, match="unknown embedding protocol 'grpc'"):
        remote_name("m", "grpc", "http://h")


def test_settings_choose_the_endpoint_and_an_explicit_plain_name_stays_local(settings):
    from pydantic import SecretStr

    assert remote_embeddings(settings) is None
    cfg = Settings(home=settings.home, embedding_model="bge", embedding_endpoint="http://k:p@gpu:8080", embedding_protocol="tei",
                   embedding_api_key=SecretStr("sk"), embedding_timeout_s=5, embedding_max_batch=8, embedding_dim=384)
    client = remote_embeddings(cfg)
    assert (client.name, client.protocol, client.max_batch, client.dim) == ("bge@tei+http://gpu:8080", "tei", 8, 384)
    assert client._endpoint.base_url == "http://k:p@gpu:8080"  # the configured URL, credentials and all
    assert remote_embeddings(cfg, "all-MiniLM-L6-v2") is None  # an index version built by a local model
    recorded = remote_embeddings(cfg, "e5@openai+http://other:9000")  # another endpoint, named by an index version
    assert (recorded.name, recorded.protocol, recorded._endpoint.base_url) == ("e5@openai+http://other:9000", "openai",
                                                                               "http://other:9000")


def test_tei_rerank_scores_come_back_in_the_order_given(server, models):
    query, texts = "how is the index refreshed", TEXTS[:5]
    reranker = TEIReranker(server.url, api_key="rk", max_batch=2)
    assert isinstance(reranker, Reranker) and reranker.name == f"tei+{server.url}"
    scores = reranker.score(query, texts)
    expected = models[1].predict([(query, t) for t in texts])
    assert np.allclose(scores, expected, atol=1e-5)
    assert [len(body["texts"]) for _, body, _ in server.requests] == [2, 2, 1]
    assert server.requests[0][1] == {"query": query, "texts": texts[:2], "raw_scores": False, "truncate": True}
    assert server.requests[0][2] == "Bearer rk"
    assert reranker.score(query, []) == []


@pytest.mark.parametrize("mode, problem", [
    ("error", "answered HTTP 500"),
    ("garbage", "not JSON"),
    ("shape", "answered {'object': 'list'}, not [{\"index\": i, \"score\": s}, ...]"),
    ("short", "answered 2 scores for 3 texts"),
    ("nan", "answered the score nan, not a number"),
    ("bad_index", "answered the index 0 for 3 texts"),
])
def test_a_bad_rerank_answer_is_a_clear_error(server, mode, problem):
    server.mode = mode
    with pytest.raises(EmbeddingModelError) as caught:
        TEIReranker(server.url).score("q", TEXTS[:3])
    assert f"{server.url}/rerank" in str(caught.value) and problem in str(caught.value)


def test_remote_reranker_follows_the_settings(server, settings):
    assert remote_reranker(settings) is None
    reranker = remote_reranker(Settings(home=settings.home, reranker_endpoint=server.url, embedding_timeout_s=0.2))
    server.mode = "hang"
    with pytest.raises(EmbeddingModelError, match="did not answer within 0.2 s"):
        reranker.score("q", ["a"])
