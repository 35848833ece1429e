"""Connected MCP tools: their definitions pinned, drift detected, contracts probed, changed tools held.

The assistant calls the tools in RAGOPS_MCP_TOOLS on every question. A server can change a tool behind our back
(rename an argument, reword the description the model reads, widen its schema, return another shape), by accident
or on purpose (a "rug pull"). ragops records an approved fingerprint of each definition, compares what the server
lists with it, and stops calling a tool whose definition moved until a person reviews and approves it; an approval
pins only the definition the person reviewed, by its fingerprint. Probes drawn at random, and a sample of real
results, keep a tool to its contract; a tool that breaks it is held the same way, and a held tool is never called.
"""
