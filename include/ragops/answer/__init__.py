"""Retrieval, answer generation, fallbacks and MCP tool calls for the serving app and the CLI."""
