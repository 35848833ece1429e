"""The fallback codes of the API (docs/serving.md): what the user sees and the HTTP status of each."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fallback:
    code: str
    status: int
    message: str


NO_RESULTS = Fallback("no_results", 200, "No matching information was found in the knowledge base for your question. "
                      "Try rephrasing it or using other keywords.")
# The tool's own error text is never shown: it may carry internals (hosts, paths, a server's stack); the request id
# is the reference under which the cause is logged and stored with the request event.
TOOL_FAILED = Fallback("tool_failed", 200, "The assistant could not use the tool {tool!r} right now (reference "
                       "{reference}). Please try again shortly.")
LLM_UNAVAILABLE = Fallback("llm_unavailable", 503, "The assistant's language model is down for maintenance right now, "
                           "so no answer could be written. Please try again later.")
RATE_LIMITED = Fallback("rate_limited", 429, "Too many requests. Please wait {retry_after} seconds and try again.")
STORE_UNAVAILABLE = Fallback("store_unavailable", 503, "The knowledge base is down for maintenance right now. "
                             "Please try again later.")

ALL = {f.code: f for f in (NO_RESULTS, TOOL_FAILED, LLM_UNAVAILABLE, RATE_LIMITED, STORE_UNAVAILABLE)}
