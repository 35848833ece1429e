import pytest
from pydantic import ValidationError

from ragops.config import Settings


def test_env_prefix_and_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("RAGOPS_HOME", str(tmp_path))
    monkeypatch.setenv("RAGOPS_RATE_LIMIT", "5/second")
    monkeypatch.delenv("RAGOPS_DATABASE_URL", raising=False)
    s = Settings()
    assert s.home == tmp_path
    assert s.rate_limit == "5/second"
    assert s.registry_url == f"sqlite:///{(tmp_path / 'registry.sqlite').resolve()}"
    assert s.source.startswith("file://") and s.source.endswith("/docs")


def test_unknown_store_is_refused(monkeypatch):
    monkeypatch.setenv("RAGOPS_STORE", "faiss")
    with pytest.raises(ValidationError, match="lance"):
        Settings()


def test_secrets_do_not_leak_in_repr(monkeypatch):
    monkeypatch.setenv("RAGOPS_SLACK_TOKEN", "xoxb-secret")
    s = Settings()
    assert "xoxb-secret" not in repr(s)
    assert s.slack_token.get_secret_value() == "xoxb-secret"
