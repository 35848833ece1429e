"""The answer as a stream: the same result as `ask`, written piece by piece; a model that fails mid-answer."""

import asyncio

import pytest

from ragops.answer.pipeline import AnswerResult, AnswerService
from ragops.answer.streaming import sentences, stream_answer
from ragops.errors import LLMUnavailable

QUESTION = "What happens to documents that fail validation?"


def test_sentences_split_after_each_citation_and_join_back():
    text = "Extractive answer (quoted):\nFirst sentence here [1] Second one [2] Last [1]"
    pieces = sentences(text)
    assert pieces == ["Extractive answer (quoted):\n", "First sentence here [1] ", "Second one [2] ", "Last [1]"]
    assert "".join(pieces) == text


class Streaming:
    """A ChatModel that streams `pieces`, then raises `fail` (if any) instead of finishing; `closed` tells whether
    the consumer closed its stream."""

    name = "streaming"

    def __init__(self, pieces, fail=None):
        self.pieces, self.fail, self.closed = pieces, fail, False

    async def complete(self, system, user):
        return "".join(self.pieces)

    async def stream(self, system, user):
        try:
            for piece in self.pieces:
                yield piece
            if self.fail:
                raise self.fail
        finally:
            self.closed = True


def _collect(service, question=QUESTION):
    async def run():
        return [item async for item in stream_answer(service, question, "user-1")]

    items = asyncio.run(run())
    assert isinstance(items[-1], AnswerResult) and not any(isinstance(i, AnswerResult) for i in items[:-1])
    return items[:-1], items[-1]


@pytest.fixture
def service(indexed, embedder):
    def make(chat_model=None):
        return AnswerService(indexed, embedder=embedder, chat_model=chat_model)

    return make


def test_the_extractive_stream_is_the_answer_ask_gives(service):
    svc = service()
    pieces, result = _collect(svc)
    asked = asyncio.run(svc.ask(QUESTION, "user-1"))
    assert "".join(pieces) == result.answer == asked.answer and len(pieces) >= 2
    assert result.citations == asked.citations and result.fallback is None


def test_model_pieces_pass_through_and_cite(service):
    model = Streaming(["Documents that fail ", "are quarantined ", "[1]."])
    pieces, result = _collect(service(model))
    assert pieces == model.pieces and result.answer == "Documents that fail are quarantined [1]."
    assert [c["n"] for c in result.citations] == [1] and result.generator == "streaming"


def test_a_model_that_fails_mid_answer_leaves_a_truncated_answer(service):
    model = Streaming(["Documents that fail ", "are"], LLMUnavailable("the language model did not finish within 4 s"))
    pieces, result = _collect(service(model))
    assert pieces[:2] == model.pieces and pieces[2].startswith("\n\n[The answer was cut off") and "time ran out" in pieces[2]
    assert result.truncated and result.fallback == "llm_unavailable" and result.status == 503
    assert result.error.startswith("truncated mid-answer") and model.closed


def test_a_model_that_fails_before_its_first_piece_is_the_fallback(service):
    pieces, result = _collect(service(Streaming([], LLMUnavailable("down"))))
    assert result.fallback == "llm_unavailable" and not result.truncated and pieces == [result.answer]


def test_a_consumer_that_stops_early_closes_the_model_stream(service):
    model = Streaming(["one ", "two ", "three"])

    async def run():
        stream = stream_answer(service(model), QUESTION, "user-1")
        first = await stream.__anext__()
        await stream.aclose()  # the client left
        return first

    assert asyncio.run(run()) == "one " and model.closed


def test_no_results_streams_its_message(service):
    pieces, result = _collect(service(), "Best pizza dough hydration for a wood oven?")
    assert result.fallback == "no_results" and pieces == [result.answer]
