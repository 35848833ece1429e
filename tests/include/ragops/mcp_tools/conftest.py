"""A real MCP server with a `lookup` tool on a free loopback port, and settings that connect ragops to it."""

from typing import Annotated

import pytest
import yaml
from pydantic import Field

from support import ToolServer


def lookup(query: Annotated[str, Field(max_length=100)]) -> str:
    return f"ticket {query}: status open"


@pytest.fixture
def tool_server():
    server = ToolServer()
    server.define(lookup, "lookup", "Look up a ticket by its id.")
    with server.running() as url:
        server.url = url
        yield server


@pytest.fixture
def contracts(tmp_path):
    path = tmp_path / "mcp-tool-contracts.yaml"
    path.write_text(yaml.safe_dump({"tools": [{"tool": "lookup", "probes": [
        {"name": "a known ticket", "arguments": {"query": "T-1"}, "expect": {"contains": ["status"], "matches": "T-[0-9]+"}}]}]}))
    return path


@pytest.fixture
def tool_settings(settings, tool_server, contracts):
    return settings.model_copy(update={"mcp_tools": [{"url": tool_server.url, "tool": "lookup", "timeout_s": 10.0}],
                                       "mcp_tool_contracts": contracts, "mcp_tool_probe_spacing_s": 0.0})


@pytest.fixture
def registry(tool_settings):
    from ragops.registry import Registry

    tool_settings.ensure_home()
    registry = Registry(tool_settings.registry_url)
    yield registry
    registry.dispose()
