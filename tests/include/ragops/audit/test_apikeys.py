"""API keys: issued once, kept as hashes, verified in constant time, revocable; `ragops keys` drives them."""

import json

import pytest

from ragops.audit.apikeys import ApiKeys, issue, revoke
from ragops.errors import ConfigError


def test_issue_verify_revoke(tmp_path):
    path = tmp_path / "keys.yaml"
    secret, entry = issue(path, "team-a", rate_limit="300/minute")
    other, _ = issue(path, "team-b")
    text = path.read_text()
    assert secret not in text and other not in text and entry.key_sha256 in text
    keys = ApiKeys.load(path)
    assert keys.verify(secret).name == "team-a" and keys.verify(secret).rate_limit == "300/minute"
    assert keys.verify(other).name == "team-b" and keys.verify("rgk_guess") is None and keys.verify("") is None
    with pytest.raises(ConfigError, match="exists already"):
        issue(path, "team-a")
    with pytest.raises(ConfigError, match="not a rate limit"):
        issue(path, "team-c", rate_limit="lots")
    revoke(path, "team-a")
    assert ApiKeys.load(path).verify(secret) is None and ApiKeys.load(path).verify(other).name == "team-b"


def test_a_malformed_keys_file_is_a_config_error(tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text("keys:\n  - name: x\n    key_sha256: short\n")
    with pytest.raises(ConfigError, match="sha256"):
        ApiKeys.load(path)


def test_ragops_keys_prints_the_key_once(tmp_path, cli):
    env = {"RAGOPS_HOME": str(tmp_path / "home"), "RAGOPS_API_KEYS": str(tmp_path / "keys.yaml")}

    def run(*argv):
        done = cli(None, "keys", *argv, "--json", env=env, check=False)
        return done.returncode, json.loads(done.stdout)

    code, issued = run("issue", "support")
    assert code == 0 and issued["key"].startswith("rgk_") and issued["key"] not in (tmp_path / "keys.yaml").read_text()
    code, listed = run("list")
    assert code == 0 and [k["name"] for k in listed["keys"]] == ["support"] and "key" not in listed["keys"][0]
    code, body = run("issue", "support")
    assert code == 1 and body["error"]["code"] == "config_error"
