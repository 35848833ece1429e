"""The error hierarchy. Each error carries a stable code that the CLI and the API put in their JSON."""

from __future__ import annotations


class RagopsError(Exception):
    """Base of every handled ragops failure."""

    code = "error"
    exit_code = 1

    def to_dict(self) -> dict:
        return {"error": {"code": self.code, "message": str(self)}}


class ConfigError(RagopsError):
    code = "config_error"


class SourceUnavailable(RagopsError):
    """The document source cannot be listed or read."""

    code = "source_unavailable"


class RefreshBlocked(RagopsError):
    """A guard stopped a refresh before it touched the index."""

    code = "refresh_blocked"
    exit_code = 2


class FirstRefreshPending(RagopsError):
    """No document refresh has succeeded yet: there is no index to watch, probe or evaluate."""

    code = "first_refresh_pending"


class RefreshConflict(RagopsError):
    """The index moved on since this refresh was planned, or another refresh holds the lock."""

    code = "refresh_conflict"
    exit_code = 3


class ClockSkew(RagopsError):
    """This host's clock is far from the registry database's: a time-based decision (a prune) is refused."""

    code = "clock_skew"


class StoreUnavailable(RagopsError):
    """The index or the registry cannot be read."""

    code = "store_unavailable"


class IndexingTimeout(StoreUnavailable):
    """The index backend did not finish indexing a write within its deadline (RAGOPS_WEAVIATE_INDEX_WAIT_S).

    Retryable: the half-built version is deleted and the lease released, so the next try (or refresh) starts clean.
    """

    code = "index_wait_timeout"


class EmbeddingModelError(RagopsError):
    code = "embedding_model_error"


class NotifyError(RagopsError):
    code = "notify_failed"


class LLMUnavailable(RagopsError):
    """The language model is down, timed out, answered badly, or its circuit is open."""

    code = "llm_unavailable"


class ToolFailed(RagopsError):
    """An MCP tool call failed or timed out."""

    code = "tool_failed"

    def __init__(self, tool: str, reason: str):
        super().__init__(f"the tool {tool!r} failed: {reason}")
        self.tool = tool
        self.reason = reason


class ParseBudgetExceeded(RagopsError):
    """One document took longer to parse than its budget; it is quarantined, the refresh goes on."""

    code = "parse_budget_exceeded"


class RefreshFailed(RagopsError):
    """A refresh failed for a reason no narrower error names; the run records it and an alert goes out."""

    code = "refresh_failed"


class UnknownRequest(RagopsError):
    """A vote names a request the registry does not hold for this caller: unknown and foreign ids alike, so ids
    cannot be probed."""

    code = "unknown_request"
