from datetime import datetime, timedelta, timezone

import pytest

from ragops.audit.permissions import Permissions, hash_token
from ragops.errors import ConfigError


def test_grants_tools_collections_and_expiry(tmp_path):
    past = (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()
    path = tmp_path / "perm.yaml"
    path.write_text(f"""
clients:
  - name: bot
    token_sha256: {hash_token("t-bot")}
    tools: [search_knowledge_base]
    collections: [chunks]
  - name: old
    token_sha256: {hash_token("t-old")}
    tools: ["*"]
    expires: {past}
  - name: gone
    token_sha256: {hash_token("t-gone")}
    tools: ["*"]
    revoked: true
""")
    perms = Permissions.load(path)
    bot = perms.by_token("t-bot")
    assert bot.allows("search_knowledge_base", "chunks") == (True, "granted")
    assert bot.allows("get_document", "chunks")[0] is False
    assert "collection" in bot.allows("search_knowledge_base", "secret")[1]
    assert bot.allows("search_knowledge_base", "") == (False, "collection '' is not granted to bot")  # issue 22.6
    assert "expired" in perms.by_token("t-old").allows("get_document")[1]
    assert "revoked" in perms.by_token("t-gone").allows("get_document")[1]
    assert perms.by_token("nope") is None


@pytest.mark.parametrize("data", [{"clients": [{"name": "x"}]}, {"clients": [{"name": "x", "token_sha256": "abc", "tools": []}]},
                                  {"clients": [{"name": "x", "token_sha256": "a" * 64, "tools": []}] * 2}])
def test_invalid_files_are_refused(data):
    with pytest.raises(ConfigError):
        Permissions.parse(data)
