"""The answer as a stream: the same pipeline as `AnswerService.ask`, written piece by piece.

`stream_answer` yields text pieces (str) as they are written, then exactly one AnswerResult, the same one `ask`
would have returned (its `answer` is the whole text sent). With a language model its tokens pass through as they
arrive, under the model's total deadline; without one the extractive answer goes out sentence by sentence. A model
that fails before its first token gives the llm_unavailable fallback, as `ask` does; one that fails, runs out of
time or runs over its size mid-answer leaves the text sent so far, marked `truncated`, with the llm_unavailable code
and the cause in `error`; one that stops at its own token limit is `truncated` too, with the answer's own status
(`AnswerService.unfinished`). A consumer that stops early (a client that left) closes the model's upstream stream
with this generator.
"""

from __future__ import annotations

import re
from contextlib import aclosing
from typing import AsyncIterator

from ragops.answer import fallbacks
from ragops.answer.extractive import extractive_answer
from ragops.answer.llm import AnswerCut
from ragops.answer.pipeline import SYSTEM_PROMPT, AnswerResult, AnswerService, Draft
from ragops.errors import LLMUnavailable
from ragops.releases import ReleaseInfo

_SENTENCE_END = re.compile(r"(?<=\])\s+|\n")  # the extractive answer cites after each sentence: "... [2] Next ..."


def sentences(text: str) -> list[str]:
    """The extractive answer in pieces of whole sentences (each with its citation), joined back they are `text`."""
    pieces, last = [], 0
    for match in _SENTENCE_END.finditer(text):
        pieces.append(text[last:match.end()])
        last = match.end()
    if last < len(text):
        pieces.append(text[last:])
    return pieces


async def stream_answer(service: AnswerService, question: str, user_key: str, k: int | None = None,
                        release: ReleaseInfo | None = None,
                        reference: str | None = None) -> AsyncIterator[str | AnswerResult]:
    draft = await service.prepare(question, user_key, k, release, reference)
    if isinstance(draft, AnswerResult):  # a fallback: its message is the whole answer
        yield draft.answer
        yield draft
        return
    if draft.preamble:
        yield draft.preamble
    if service.chat_model is None:
        text, used = extractive_answer(question, draft.hits)
        for piece in sentences(text):
            yield piece
        yield service.finish(draft, text, used, "extractive")
        return
    async with aclosing(_from_model(service, draft)) as items:  # closed with this one: the upstream closes at once
        async for item in items:
            yield item


async def _from_model(service: AnswerService, draft: Draft) -> AsyncIterator[str | AnswerResult]:
    model = service.chat_model
    if not hasattr(model, "stream"):  # a ChatModel that cannot stream answers in one piece
        try:
            text = await model.complete(SYSTEM_PROMPT, draft.prompt)
        except AnswerCut as cut:
            notice, result = service.unfinished(draft, cut.kept, cut)
            for item in (cut.kept, notice, result):
                yield item
            return
        except LLMUnavailable:
            for item in _llm_unavailable(service, draft):
                yield item
            return
        yield text
        yield service.finish(draft, text)
        return
    parts: list[str] = []
    try:
        async with aclosing(model.stream(SYSTEM_PROMPT, draft.prompt)) as pieces:
            async for piece in pieces:
                parts.append(piece)
                yield piece
    except LLMUnavailable as exc:
        if not parts:
            for item in _llm_unavailable(service, draft):
                yield item
            return
        notice, result = service.unfinished(draft, "".join(parts), exc)
        yield notice
        yield result
        return
    yield service.finish(draft, "".join(parts))


def _llm_unavailable(service: AnswerService, draft: Draft) -> list[str | AnswerResult]:
    """Nothing was written: the fallback's message is what the user reads, after the preamble already sent."""
    result = service._fallback(draft.result, fallbacks.LLM_UNAVAILABLE, draft.started)
    message = result.answer
    result.answer = draft.preamble + message
    return [message, result]

