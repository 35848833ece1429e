"""The contracts file is validated when it is read, and each expectation fails a result that breaks it."""

import pytest
import yaml

from ragops.errors import ConfigError
from ragops.mcp_client import ToolConfig
from ragops.mcp_tools.contracts import check, contracts_path, load_contracts

TOOLS = [ToolConfig(url="http://a/mcp/", tool="lookup"), ToolConfig(url="http://b/mcp/", tool="lookup")]


def write(tmp_path, data) -> object:
    path = tmp_path / "contracts.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_probes_attach_to_their_tool_and_server(tmp_path):
    path = write(tmp_path, {"tools": [{"tool": "lookup", "server": "http://b/mcp/",
                                       "probes": [{"name": "p", "arguments": {"query": "x"}, "expect": {"contains": "x"}}]}]})
    contracts = load_contracts(path, TOOLS)
    assert list(contracts) == [("http://b/mcp/", "lookup")]
    assert contracts[("http://b/mcp/", "lookup")].probes[0].arguments == {"query": "x"}
    assert load_contracts(tmp_path / "absent.yaml", TOOLS) == {}


@pytest.mark.parametrize("data,message", [
    ({"tools": [{"tool": "other"}]}, "is not a connected tool"),
    ({"tools": [{"probes": []}]}, "needs a `tool` name"),
    ({"tools": [{"tool": "lookup", "probes": [{"arguments": {}, "expect": {"looks_like": 1}}]}]}, "unknown expectations"),
    ({"tools": [{"tool": "lookup", "probes": [{"arguments": {}, "expect": {"matches": "("}}]}]}, "not a regular expression"),
    ({"tools": [{"tool": "lookup", "probes": [{"arguments": {}, "expect": {"shape": {"type": 5}}}]}]}, "not a JSON Schema"),
    ({"tools": [{"tool": "lookup", "probes": [{"arguments": "x"}]}]}, "needs `arguments` as a mapping"),
    ("tools: [", "cannot read"),
])
def test_a_malformed_file_is_a_clear_config_error(tmp_path, data, message):
    with pytest.raises(ConfigError, match=message):
        load_contracts(write(tmp_path, data), TOOLS)


def test_each_expectation_can_fail():
    assert check({"contains": ["open"], "matches": "T-[0-9]+"}, "T-1 is open", None, False) == []
    assert check({"contains": ["closed"]}, "T-1 is open", None, False) == ["the result does not contain 'closed'"]
    assert check({"matches": "^X"}, "T-1", None, False) == ["the result does not match /^X/"]
    assert check({}, "boom", None, True) == ["the tool returned an error: boom"]
    assert check({"error": True}, "fine", None, False) == ["the tool accepted a call it must refuse"]
    assert check({"error": True}, "refused", None, True) == []
    shape = {"type": "object", "required": ["status"]}
    assert check({"shape": shape}, "", {"status": "open"}, False) == []
    assert check({"shape": shape}, '{"id": 1}', None, False) == ["shape: (root): 'status' is a required property"]
    assert check({"shape": shape}, "not json", None, False) == ["the result has no structured content and its text is not JSON"]


def test_the_file_lives_beside_the_permissions_file(settings, tmp_path):
    assert contracts_path(settings) is None
    beside = settings.model_copy(update={"mcp_permissions": tmp_path / "config" / "mcp-permissions.yaml"})
    assert contracts_path(beside) == tmp_path / "config" / "mcp-tool-contracts.yaml"
    explicit = beside.model_copy(update={"mcp_tool_contracts": tmp_path / "c.yaml"})
    assert contracts_path(explicit) == tmp_path / "c.yaml"


def test_the_tool_level_expectation_applies_to_every_probe_and_is_kept_for_live_sampling(tmp_path):
    path = write(tmp_path, {"tools": [{"tool": "lookup", "server": "http://a/mcp/", "expect": {"matches": "status"},
                                       "probes": [{"name": "p", "arguments": {"query": "x"}, "expect": {"contains": "x"}},
                                                  {"name": "q", "arguments": {"query": "y"}},
                                                  {"name": "r", "arguments": {}, "expect": {"matches": "T-1"}},
                                                  {"name": "s", "arguments": {}, "expect": {"error": True}}]}]})
    contract = load_contracts(path, TOOLS)[("http://a/mcp/", "lookup")]
    assert contract.expect == {"matches": "status"}
    assert [p.expect for p in contract.probes] == [{"matches": "status", "contains": "x"}, {"matches": "status"},
                                                   {"matches": ["status", "T-1"]}, {"error": True}]
    assert check(contract.probes[2].expect, "T-1", None, False) == ["the result does not match /status/"]
    with pytest.raises(ConfigError, match="unknown expectations"):
        load_contracts(write(tmp_path, {"tools": [{"tool": "lookup", "expect": {"smells": 1}}]}), TOOLS)
