"""MCP tokens: shown once, stored as a hash, in the file the server reads; bad input refused; edits atomic."""

import json
import os
import stat
from datetime import date, datetime, timedelta, timezone

import pytest

from ragops.audit.permissions import Permissions, hash_token
from ragops.audit.tokens import issue_token, list_clients, revoke_token
from ragops.cli.main import main
from ragops.errors import ConfigError


def test_issue_stores_only_the_hash_and_the_server_accepts_the_token(tmp_path):
    path = tmp_path / "mcp" / "permissions.yaml"
    issued = issue_token(path, "support-bot", ["search_knowledge_base", "get_document"], ["chunks"],
                         date.today() + timedelta(days=30))
    text = path.read_text()
    assert issued.token not in text and hash_token(issued.token) in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    grant = Permissions.load(path).by_token(issued.token)
    assert grant.name == "support-bot" and grant.allows("get_document", "chunks") == (True, "granted")
    assert not grant.allows("get_document", "secrets")[0]


def test_an_existing_client_is_rotated_only_on_purpose_and_revoked_clients_stay_listed(tmp_path):
    path = tmp_path / "permissions.yaml"
    first = issue_token(path, "bot", ["*"])
    with pytest.raises(ConfigError, match="exists already"):
        issue_token(path, "bot", ["*"])
    second = issue_token(path, "bot", ["get_document"], rotate=True)
    permissions = Permissions.load(path)
    assert permissions.by_token(first.token) is None and permissions.by_token(second.token).tools == ("get_document",)
    revoke_token(path, "bot")
    revoked_at = Permissions.load(path).clients[0].revoked_at  # the audit rates only calls after it as critical
    assert revoked_at is not None and datetime.now(timezone.utc) - revoked_at < timedelta(days=1)
    revoke_token(path, "bot")
    assert Permissions.load(path).clients[0].revoked_at == revoked_at  # revoking again keeps the first moment
    [listed] = list_clients(path)
    assert listed["revoked"] and listed["token"].endswith("…") and second.token not in json.dumps(listed)
    with pytest.raises(ConfigError, match="no client 'ghost'"):
        revoke_token(path, "ghost")


@pytest.mark.parametrize("client, tools, message", [
    ("", ["x"], "client name"), ("a b", ["x"], "client name"), ("../etc", ["x"], "client name"),
    ("bot", [], "at least one tool"), ("bot", ["rm -rf"], "not a tool"),
])
def test_hostile_names_are_refused(tmp_path, client, tools, message):
    with pytest.raises(ConfigError, match=message):
        issue_token(tmp_path / "p.yaml", client, tools)
    assert not (tmp_path / "p.yaml").exists()


def test_a_file_the_server_would_refuse_is_not_rewritten(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("clients:\n  - name: x\n    token_sha256: short\n    tools: [a]\n")
    with pytest.raises(ConfigError, match="sha256"):
        issue_token(path, "bot", ["a"])
    assert "short" in path.read_text()


def test_cli_prints_the_token_once_and_json_has_it(tmp_path, monkeypatch, capsys):
    path = tmp_path / "p.yaml"
    monkeypatch.setenv("RAGOPS_MCP_PERMISSIONS", str(path))
    assert main(["token", "issue", "support-bot", "--expires", (date.today() + timedelta(days=9)).isoformat()]) == 0
    out = capsys.readouterr().out
    token = out.split("\n\n")[1].strip()
    assert Permissions.load(path).by_token(token).tools == ("search_knowledge_base", "get_document")
    assert main(["token", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [c["client"] for c in listed["clients"]] == ["support-bot"] and token not in json.dumps(listed)
    assert main(["token", "issue", "x", "--expires", "tomorrow", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "config_error"


def test_cli_without_a_permissions_file_says_what_to_set(monkeypatch, capsys):
    monkeypatch.delenv("RAGOPS_MCP_PERMISSIONS", raising=False)
    assert main(["token", "issue", "bot", "--json"]) == 1
    assert "RAGOPS_MCP_PERMISSIONS" in json.loads(capsys.readouterr().out)["error"]["message"]
