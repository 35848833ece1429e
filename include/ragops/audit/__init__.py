"""The MCP permission model (who may call which tool on which collection) and the access-log analysis."""
