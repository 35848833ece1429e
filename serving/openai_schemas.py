"""The OpenAI chat-completions protocol as ragops speaks it: the request body, the reply and the stream's chunks.

Fields a client sends that ragops has no use for (temperature, max_tokens, tools, ...) are accepted and ignored, as
front ends send them unasked. ragops' own fields are in one extension object, `ragops`, on the reply and on the
last chunk of a stream: `request_id`, `fallback` (null for an answer), `citations`, `variant`, `release`, `query`
(what retrieval searched) and `truncated` (the model stopped mid-answer).
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ragops.answer.llm import FILTERED
from ragops.answer.pipeline import AnswerResult
from serving.schemas import NAME_MAX
from serving.streams import sse

ROUTED = "ragops"  # the model name of the routed default: stable or canary, sticky per caller


def _utf8(text: str | None) -> str | None:
    """A string that is valid UTF-8: JSON may escape half a surrogate pair ("\\ud800"), which a plain `str` field
    refuses but a union with str lets through, to fail later in the embedder (a 500)."""
    if text is not None:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("the text is not valid UTF-8 (a lone surrogate escape)") from None
    return text


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str = Field(max_length=32)
    text: str | None = None

    _text_is_utf8 = field_validator("text")(_utf8)


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    @field_validator("content")
    @classmethod
    def _content_is_utf8(cls, content):
        return _utf8(content) if isinstance(content, str) else content

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=NAME_MAX, description=f"`{ROUTED}` (routed) or a release's name")
    messages: list[Message] = Field(min_length=1, description="the conversation; the last message is the question")
    stream: bool = Field(default=False, strict=True)
    user: str | None = Field(default=None, max_length=NAME_MAX, description="with an API key: the end user it "
                             "acts for, which keeps that user's canary routing sticky (as /v1/ask's user_id)")
    n: int | None = Field(default=None, ge=1, le=1, description="one choice only")


class ChatError(Exception):
    """A request ragops will not answer, with its HTTP status and stable code."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code = status, code


def conversation(body: ChatRequest, max_turns: int, max_chars: int, question_max: int) -> tuple[list[str], str]:
    """(the earlier user turns, the question) of a chat request, or ChatError when it is over its bounds. A
    client's system prompt is ignored: ragops' own prompt and its fencing of passages stay as they are."""
    if len(body.messages) > max_turns:
        raise ChatError(400, "conversation_too_long", f"the conversation has {len(body.messages)} messages; at most "
                        f"{max_turns} are accepted (RAGOPS_CHAT_MAX_TURNS): send fewer earlier turns")
    chars = sum(len(m.text()) for m in body.messages)
    if chars > max_chars:
        raise ChatError(400, "conversation_too_long", f"the conversation has {chars} characters; at most {max_chars} "
                        "are accepted (RAGOPS_CHAT_MAX_CHARS): send fewer earlier turns")
    last = body.messages[-1]
    question = last.text().strip()
    if last.role != "user" or not question:
        raise ChatError(422, "invalid_request", "the last message must be the user's question, with text")
    if len(question) > question_max:
        raise ChatError(400, "conversation_too_long", f"the question has {len(question)} characters; at most "
                        f"{question_max} are accepted")
    earlier = [m.text().strip() for m in body.messages[:-1] if m.role == "user" and m.text().strip()]
    return earlier, question


def sources(citations: list[dict]) -> str:
    """The numbered references of an answer's text, as a list to put after it."""
    if not citations:
        return ""
    lines = []
    for c in citations:
        name = " › ".join(part for part in (c.get("title"), c.get("heading")) if part) or c["doc_uri"]
        lines.append(f"[{c['n']}] {name} ({c['doc_uri']})" if name != c["doc_uri"] else f"[{c['n']}] {name}")
    return "\n\nSources:\n" + "\n".join(lines)


def extension(result: AnswerResult, request_id: str, query: str) -> dict:
    return {"request_id": request_id, "fallback": result.fallback, "citations": result.citations,
            "variant": result.variant, "release": result.release, "query": query, "truncated": result.truncated}


def finish_reason(result: AnswerResult) -> str:
    """OpenAI's words: "content_filter" when a filter withheld the rest, "length" for any other cut, else "stop"."""
    return "content_filter" if result.cut == FILTERED else "length" if result.truncated else "stop"


def completion(result: AnswerResult, model: str, request_id: str, query: str) -> dict:
    """The non-streamed reply: one choice whose text carries the numbered references and the source list."""
    return {"id": f"chatcmpl-{request_id}", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "finish_reason": finish_reason(result),
                         "message": {"role": "assistant", "content": result.answer + sources(result.citations)}}],
            "ragops": extension(result, request_id, query)}


class ChunkEncoder:
    """The stream: `chat.completion.chunk` objects, the source list as the last text, then `data: [DONE]`."""

    def __init__(self, model: str, request_id: str, query: str):
        self.model, self.request_id, self.query = model, request_id, query
        self.created = int(time.time())

    def _chunk(self, delta: dict, finish_reason: str | None = None, **extra) -> bytes:
        return sse({"id": f"chatcmpl-{self.request_id}", "object": "chat.completion.chunk", "created": self.created,
                    "model": self.model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
                   | extra)

    def start(self) -> bytes:
        return self._chunk({"role": "assistant", "content": ""})

    def piece(self, text: str) -> bytes:
        return self._chunk({"content": text})

    def end(self, result: AnswerResult, text: str) -> bytes:
        tail = self._chunk({"content": sources(result.citations)}) if result.citations else b""
        return tail + self._chunk({}, finish_reason(result),
                                  ragops=extension(result, self.request_id, self.query)) + sse("[DONE]")

    def failed(self, code: str, message: str) -> bytes:
        # the openai SDK raises an APIError for a chunk that carries `error`
        return sse({"error": {"code": code, "message": message, "type": "server_error"}}) + sse("[DONE]")
