"""Request and response bodies of the HTTP API (validated by FastAPI, published in the OpenAPI document)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=2000, description="the user's question")
    user_id: str | None = Field(default=None, max_length=128, description="stable id for routing and limits")
    k: int | None = Field(default=None, ge=1, le=20, description="number of passages to retrieve")


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


class ErrorBody(BaseModel):
    error: dict = Field(description='{"code", "message"}; fallbacks also carry "fallback" at the top level')
