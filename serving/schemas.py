"""Request and response bodies of the HTTP API (validated by FastAPI, published in the OpenAPI document)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ragops.feedback.votes import COMMENT_MAX

# Input bounds, shared with the MCP tools (serving/mcp_server.py) so both doors cost the same at most.
QUESTION_MAX = 2000
K_MAX = 20
NAME_MAX = 128  # user ids, collection and release names
URI_MAX = 2048
REQUEST_ID_MAX = 200  # serving/callers.py REQUEST_ID


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=QUESTION_MAX, description="the user's question")
    user_id: str | None = Field(default=None, max_length=NAME_MAX,
                                description="with an API key: the id of the end user the key acts for, which keeps "
                                            "that user's canary routing sticky; ignored without a key (never a "
                                            "rate-limit identity)")
    k: int | None = Field(default=None, ge=1, le=K_MAX, description="number of passages to retrieve")
    stream: bool = Field(default=False, strict=True, description="/v1/ask only: the answer as server-sent events (start, delta "
                         "events of text, then done with the whole reply)")


class Citation(BaseModel):
    n: int
    chunk_id: str
    doc_uri: str
    title: str = ""
    heading: str = ""


class AskResponse(BaseModel):
    answer: str
    citations: list[Citation]
    fallback: str | None
    variant: str
    release: str
    latency_ms: float
    request_id: str
    truncated: bool = False  # the model did not finish the answer (cut at a size or token limit, or mid-answer)


class SearchResult(BaseModel):
    chunk_id: str
    doc_uri: str
    score: float
    text: str


class SearchResponse(BaseModel):
    results: list[SearchResult]
    fallback: str | None
    message: str | None = None
    variant: str
    release: str
    latency_ms: float
    request_id: str


class ErrorDetail(BaseModel):
    code: str = Field(description="stable code: invalid_request, invalid_api_key, payload_too_large, rate_limited, "
                                  "llm_unavailable, store_unavailable, unknown_request, http_error, internal_error")
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail
    request_id: str | None = None
    fallback: str | None = Field(default=None, description="the fallback code, for fallbacks")


class Readiness(BaseModel):
    """Codes only: /readyz answers anyone, so what failed is in the service's log, not here."""

    ready: bool = Field(description="search can be served (registry and index)")
    not_ready: list[str] = Field(description="the required checks that fail: registry, index")
    degraded: list[str] = Field(description="optional dependencies that are down (the LLM): answers fall back")


class FeedbackBody(BaseModel):
    """A vote on one answer the caller was given, named by the `request_id` of its response."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=REQUEST_ID_MAX, pattern=r"^[\x21-\x7e]+$",
                            description="the request_id of the answer (its response body or X-Request-ID)")
    rating: Literal["up", "down"]
    reason: Literal["wrong", "incomplete", "outdated", "no_answer"] | None = Field(
        default=None, description="why, for a down vote")
    comment: str | None = Field(default=None, max_length=COMMENT_MAX,
                                description="free text; e-mail addresses, secrets and long numbers are redacted "
                                            "before it is stored")
    cited_followed: bool | None = Field(default=None, description="the user opened a cited document")
    user_id: str | None = Field(default=None, max_length=NAME_MAX,
                                description="with an API key: the end user the answer was asked for (the same "
                                            "`user_id` the question was sent with)")


class FeedbackResponse(BaseModel):
    request_id: str
    rating: str
    reason: str | None
    comment: str | None = Field(description="as stored, after redaction")
    cited_followed: bool | None
    ts: str
    replaced: bool = Field(description="an earlier vote on this request was replaced (a request has one vote)")
