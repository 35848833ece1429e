"""`ragops models`: JSON errors for what cannot be done, the list of stored models."""

import json

from ragops.models.artifacts import ModelStore


def test_train_without_an_index_is_a_json_error(settings, corpus, cli):
    result = cli(settings, "models", "train", "--json", "--max-seconds", "5", check=False)
    error = json.loads(result.stdout)
    assert result.returncode == 1 and error["error"]["code"] == "store_unavailable"
    assert "ragops refresh" in error["error"]["message"]


def test_bad_kinds_budget_and_references_are_config_errors(settings, corpus, cli):
    for args in (["train", "--kinds", "reranker,other"], ["train", "--max-seconds", "0"], ["propose"],
                 ["propose", "trained:reranker/../../x"], ["propose", "trained:embedder/4"]):
        result = cli(settings, "models", *args, "--json", check=False)
        assert result.returncode == 1, (args, result.stdout)
        assert json.loads(result.stdout)["error"]["code"] == "config_error", (args, result.stdout)


def test_list_shows_stored_models_with_their_evidence(settings, cli, tmp_path):
    built = tmp_path / "built"
    built.mkdir()
    (built / "w").write_bytes(b"1")
    settings.home.mkdir(parents=True, exist_ok=True)
    ModelStore(settings.home).publish("reranker", built, {"index_version": 3, "data_hash": "ab",
                                                          "held_out": {"before_cosine": {"mrr": 0.4},
                                                                       "after": {"mrr": 0.6}}})
    listed = json.loads(cli(settings, "models", "list", "--json").stdout)["models"]
    assert [m["ref"] for m in listed] == ["trained:reranker/1"] and listed[0]["index_version"] == 3
    assert "held-out MRR 0.4 -> 0.6" in cli(settings, "models", "list").stdout
