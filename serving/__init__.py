"""The ragops serving app (FastAPI) with the MCP server mounted at /mcp."""
