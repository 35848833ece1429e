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


def test_empty_variables_mean_unset(monkeypatch, tmp_path):
    """docker compose passes `${RAGOPS_SLACK_TOKEN:-}`: an empty value must select the outbox, not Slack with ''."""
    from ragops.notify import OutboxNotifier, build_notifier

    monkeypatch.setenv("RAGOPS_HOME", str(tmp_path))
    for name in ("SLACK_TOKEN", "LLM_BASE_URL", "LLM_API_KEY", "WEAVIATE_URL", "REDIS_URL", "CHUNK_MAX_TOKENS",
                 "MCP_PERMISSIONS"):
        monkeypatch.setenv(f"RAGOPS_{name}", "")
    s = Settings()
    assert s.slack_token is None and s.llm_base_url is None and s.llm_api_key is None
    assert s.weaviate_url is None and s.redis_url is None and s.mcp_permissions is None
    assert s.chunk_max_tokens == Settings.model_fields["chunk_max_tokens"].default == 128  # empty = the default
    assert isinstance(build_notifier(s), OutboxNotifier)


def test_blank_slack_token_from_code_selects_the_outbox(tmp_path):
    from ragops.notify import OutboxNotifier, build_notifier

    assert isinstance(build_notifier(Settings(home=tmp_path, slack_token="  ")), OutboxNotifier)


@pytest.mark.parametrize(("url", "shown"), [
    ("http://svc:hunter2@tools.internal/mcp/", "http://svc:***@tools.internal/mcp/"),
    ("https://h/v1?token=hunter2&q=a&api_key=hunter2#access_token=hunter2",
     "https://h/v1?token=***&q=a&api_key=***#access_token=***"),
    ("https://s3/b/k?X-Amz-Signature=hunter2&X-Amz-Credential=hunter2&sig=hunter2&secret=hunter2&password=hunter2",
     "https://s3/b/k?X-Amz-Signature=***&X-Amz-Credential=***&sig=***&secret=***&password=***"),
    ("postgresql+psycopg://svc:hunter2@db:port/r", "postgresql+psycopg://svc:***@db:port/r"),
    ("svc:hunter2@db", "***@db"),  # no '//': not a URL, still masked
    ("http://[::1/hunter2", "***"),
    ("sqlite:////srv/ragops/registry.sqlite", "sqlite:////srv/ragops/registry.sqlite"),
    ("http://gpu-1:8080", "http://gpu-1:8080"),
    # a token as the whole userinfo (git over HTTPS, DSNs, some hosted MCP servers): no colon, still a credential
    ("https://hunter2@tools.example.com/mcp/", "https://***@tools.example.com/mcp/"),
    ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
])
def test_mask_url_hides_passwords_and_credential_parameters_and_keeps_the_rest(url, shown):
    from ragops.config import mask_url

    assert mask_url(url) == shown
    assert "hunter2" not in mask_url(url)
