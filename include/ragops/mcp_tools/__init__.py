"""Connected MCP tools: their definitions pinned, drift detected, contracts probed, changed tools held.

The assistant calls the tools in RAGOPS_MCP_TOOLS on every question. A server can change a tool behind our back
(rename an argument, reword the description the model reads, widen its schema, return another shape), by accident
or on purpose (a "rug pull"). ragops records an approved fingerprint of each definition, compares what the server
lists with it, and stops calling a tool whose definition moved until a person reviews and approves it.
"""
