"""Trained-model artefacts: numbered versions, manifests written last, clear errors for bad references."""

import json
import threading

import pytest

from ragops.errors import ConfigError
from ragops.models.artifacts import ModelStore, is_ref


def _built(tmp_path, name="built"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\0" * 16)
    return folder


def test_publish_numbers_versions_and_keeps_the_manifest(tmp_path):
    store = ModelStore(tmp_path / "home")
    first = store.publish("reranker", _built(tmp_path), {"data_hash": "abc", "held_out": {"mrr": 0.5}})
    second = store.publish("reranker", _built(tmp_path, "b2"), {"data_hash": "def"})
    assert (first.version, second.version) == (1, 2)
    assert first.ref == "trained:reranker/1" and store.latest("reranker") == second
    assert store.resolve("trained:reranker/1").manifest["data_hash"] == "abc"
    assert (first.model_path / "weights.bin").read_bytes() == b"\0" * 16
    assert store.versions("embedder") == []


def test_concurrent_publishers_get_distinct_versions(tmp_path):
    store = ModelStore(tmp_path / "home")
    built = [_built(tmp_path, f"b{i}") for i in range(6)]
    results = []
    threads = [threading.Thread(target=lambda b=b: results.append(store.publish("embedder", b, {}).version))
               for b in built]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(results) == [1, 2, 3, 4, 5, 6]


def test_a_version_without_its_manifest_is_not_listed_nor_resolved(tmp_path):
    store = ModelStore(tmp_path / "home")
    store.publish("reranker", _built(tmp_path), {})
    (store.root / "reranker" / "2" / "model").mkdir(parents=True)  # a training that died while copying
    assert [a.version for a in store.versions("reranker")] == [1]
    with pytest.raises(ConfigError, match="no trained model trained:reranker/2"):
        store.resolve("trained:reranker/2")


@pytest.mark.parametrize("ref", ["trained:reranker/0", "trained:reranker/../../etc", "trained:other/1",
                                 "reranker/1", "trained:reranker/1/model", ""])
def test_malformed_references_are_refused(tmp_path, ref):
    with pytest.raises(ConfigError):
        ModelStore(tmp_path).resolve(ref)


def test_manifest_is_json_with_kind_and_version(tmp_path):
    artifact = ModelStore(tmp_path).publish("embedder", _built(tmp_path), {"params": {"lr": 1e-5}})
    manifest = json.loads((artifact.path / "manifest.json").read_text())
    assert manifest["kind"] == "embedder" and manifest["version"] == 1 and manifest["params"] == {"lr": 1e-5}
    assert is_ref(artifact.ref) and not is_ref("all-MiniLM-L6-v2")


def test_latest_resolves_to_the_newest_number_and_an_embedder_records_the_number(tmp_path):
    from ragops.config import Settings
    from ragops.errors import EmbeddingModelError
    from ragops.ingest.embedding import Embedder

    settings = Settings(home=tmp_path / "home")
    store = ModelStore(settings.home)
    with pytest.raises(ConfigError, match="no trained embedder"):
        store.resolve("trained:embedder/latest")
    store.publish("embedder", _built(tmp_path, "a"), {})
    second = store.publish("embedder", _built(tmp_path, "b"), {})
    assert store.resolve("trained:embedder/latest") == second
    embedder = Embedder.from_settings(settings, "trained:embedder/latest")
    assert embedder.model_name == "trained:embedder/2" and embedder.path == str(second.model_path)
    assert embedder.cache_key.startswith("trained:embedder/2")
    store.publish("reranker", _built(tmp_path, "c"), {})
    with pytest.raises(EmbeddingModelError, match="not an embedding model"):
        Embedder.from_settings(settings, "trained:reranker/1")
