import pytest

from ragops.answer.llm import CircuitBreaker
from ragops.errors import LLMUnavailable


def test_breaker_opens_after_consecutive_failures_and_half_opens():
    now = [100.0]
    breaker = CircuitBreaker(threshold=3, reset_s=30.0, clock=lambda: now[0])
    for _ in range(2):
        breaker.before()
        breaker.failure()
    breaker.before()
    breaker.success()  # a success resets the count
    for _ in range(3):
        breaker.before()
        breaker.failure()
    assert breaker.state == "open"
    with pytest.raises(LLMUnavailable, match="circuit"):
        breaker.before()
    now[0] += 29.9
    assert breaker.state == "open"
    now[0] += 0.1
    assert breaker.state == "half_open"
    breaker.before()  # one trial goes through...
    with pytest.raises(LLMUnavailable):
        breaker.before()  # ...and the next caller waits for its outcome
    breaker.success()
    assert breaker.state == "closed"


def test_a_hanging_model_gives_llm_unavailable_within_the_deadline():
    """Finding 9: the deadline bounds the whole call, retries included (20 s x 3 attempts used to be 63 s)."""
    import asyncio

    from ragops.answer.llm import OpenAIChatModel
    from support import FakeLLM

    fake = FakeLLM()
    try:
        # the SDK's first request imports its lazy modules (about a second on a loaded machine): not the deadline's
        asyncio.run(OpenAIChatModel(fake.base_url, "test-model", deadline_s=60).complete("system", "user"))
        fake.mode, fake.calls = "hang", 0  # answers only when released, which happens after the assertions
        model = OpenAIChatModel(fake.base_url, "test-model", timeout_s=300, max_retries=5, deadline_s=0.5,
                                breaker=CircuitBreaker(threshold=50))
        with pytest.raises(LLMUnavailable, match="did not answer within 0.5 s"):
            asyncio.run(model.complete("system", "user"))
        assert fake.calls == 1 and not fake.released.is_set()  # cut by the deadline, not by a reply or a retry
        assert model.breaker.failures == 1
    finally:
        fake.close()


def test_stream_passes_pieces_and_a_stall_is_cut_at_the_deadline_closing_the_upstream():
    """The deadline bounds the whole stream; what was cut is closed upstream, and counted by the breaker."""

    from ragops.answer.llm import OpenAIChatModel
    from support import FakeLLM

    fake = FakeLLM()
    try:
        model = OpenAIChatModel(fake.base_url, "test-model", max_retries=0, deadline_s=1.0,
                                breaker=CircuitBreaker(threshold=50))

        pieces, failure = _streamed(model)
        assert "".join(pieces) == fake.reply and len(pieces) > 3 and failure is None and model.breaker.failures == 0
        fake.mode = "stall"
        pieces, failure = _streamed(model)
        assert len(pieces) == 3 and "did not finish within 1 s" in str(failure)
        assert fake.disconnected.wait(10) and model.breaker.failures == 1
    finally:
        fake.close()


def test_a_stream_of_only_whitespace_is_an_empty_answer_as_complete_says():
    """Attacked after landing (issue 25): `complete` refused a blank answer but `stream` passed spaces and newlines on
    as an answer (a 200 with nothing in it, counted a success by the breaker and the canary gate)."""

    from ragops.answer.llm import OpenAIChatModel
    from support import FakeLLM

    fake = FakeLLM()
    try:
        fake.reply = " \n \n  "  # the fake streams it a word (here: whitespace) at a time
        model = OpenAIChatModel(fake.base_url, "test-model", max_retries=0, deadline_s=30,
                                breaker=CircuitBreaker(threshold=50))

        pieces, failure = _streamed(model)
        assert fake.streams == 1 and pieces == [] and "empty answer" in str(failure)
        assert model.breaker.failures == 1
        fake.reply = "\n\n  Leading blank lines are dropped [1]."
        pieces, failure = _streamed(model)
        assert failure is None and "".join(pieces) == "Leading blank lines are dropped [1]."
    finally:
        fake.close()


def test_a_runaway_stream_is_cut_at_its_size_bound():
    """Attacked after landing (issue 25): the deadline bounded a stream's time, not its size: a model that streams
    text as fast as it can filled the server's memory (every piece is also kept for the request event)."""

    from ragops.answer.llm import OpenAIChatModel
    from support import FakeLLM

    fake = FakeLLM()
    try:
        fake.reply = "word " * 2000
        model = OpenAIChatModel(fake.base_url, "test-model", max_retries=0, deadline_s=60, max_chars=1000,
                                breaker=CircuitBreaker(threshold=50))

        pieces, failure = _streamed(model)
        assert len("".join(pieces)) == 1000 and "over 1000 characters" in str(failure)
        assert fake.streams == 1 and model.breaker.failures == 1
    finally:
        fake.close()


def test_a_stream_cut_before_its_finish_reason_is_not_a_finished_answer():
    """Attacked after landing (issue 25): an upstream connection that closed mid-answer (no last chunk with its
    finish_reason, no [DONE]) ended the stream as if the answer were whole: cut text served as a finished answer."""
    import asyncio

    from ragops.answer.llm import OpenAIChatModel
    from support import FakeLLM

    fake = FakeLLM()
    try:
        fake.mode = "stall"  # three words, then the connection closes once released
        model = OpenAIChatModel(fake.base_url, "test-model", max_retries=0, deadline_s=60,
                                breaker=CircuitBreaker(threshold=50))

        async def collect():
            got = []
            try:
                async for piece in model.stream("system", "user"):
                    got.append(piece)
                    if len(got) == 3:
                        fake.released.set()
            except LLMUnavailable as exc:
                return got, exc
            return got, None

        pieces, failure = asyncio.run(collect())
        assert len(pieces) == 3 and "ended before the answer finished" in str(failure)
        assert model.breaker.failures == 1
    finally:
        fake.close()


def _streamed(model) -> tuple[list[str], LLMUnavailable | None]:
    """The pieces `model.stream` yielded, and the LLMUnavailable that ended it (None when it finished)."""
    import asyncio

    async def collect():
        got = []
        try:
            async for piece in model.stream("system", "user"):
                got.append(piece)
        except LLMUnavailable as exc:
            return got, exc
        return got, None

    return asyncio.run(collect())


def test_a_non_streamed_answer_is_cut_at_its_size_bound():
    """Issue 25 leftover: `complete` had no size bound; a model that ran on was kept whole for the answer and its event.
    Now it is cut as a stream is: what fits is kept (AnswerCut), and the overrun is a failure for the breaker."""
    import asyncio

    from ragops.answer.llm import SIZE, AnswerCut, OpenAIChatModel
    from support import FakeLLM

    fake = FakeLLM()
    try:
        fake.reply = "word " * 2000
        model = OpenAIChatModel(fake.base_url, "test-model", max_retries=0, deadline_s=60, max_chars=1000,
                                breaker=CircuitBreaker(threshold=50))
        with pytest.raises(AnswerCut) as cut:
            asyncio.run(model.complete("system", "user"))
        assert cut.value.kept == fake.reply.strip()[:1000] and cut.value.reason == SIZE and cut.value.failed
        assert "over 1000 characters" in str(cut.value) and model.breaker.failures == 1
    finally:
        fake.close()


def test_a_model_stopping_at_its_own_token_limit_is_an_unfinished_answer_not_a_failure():
    """Issue 25 leftover: `finish_reason: "length"` (the model's own token limit) was passed on as a finished answer.
    Now both `complete` and `stream` end with AnswerCut(reason length): the text stands, and it is not a failure
    of the model (the breaker counts a success)."""
    import asyncio

    from ragops.answer.llm import LENGTH, AnswerCut, OpenAIChatModel
    from support import FakeLLM

    fake = FakeLLM()
    try:
        fake.finish_reason = "length"
        model = OpenAIChatModel(fake.base_url, "test-model", max_retries=0, deadline_s=60,
                                breaker=CircuitBreaker(threshold=50))
        model.breaker.failures = 1  # a success resets it: the stop is not counted as a failure
        with pytest.raises(AnswerCut) as cut:
            asyncio.run(model.complete("system", "user"))
        assert (cut.value.kept, cut.value.reason, cut.value.failed) == (fake.reply, LENGTH, False)
        assert model.breaker.failures == 0

        model.breaker.failures = 1
        pieces, stopped = _streamed(model)
        assert "".join(pieces) == fake.reply and isinstance(stopped, AnswerCut) and stopped.reason == LENGTH
        assert not stopped.failed and model.breaker.failures == 0

        fake.finish_reason = "stop"  # a finished answer is still no AnswerCut
        assert asyncio.run(model.complete("system", "user")) == fake.reply
        assert _streamed(model) == ([w + " " for w in fake.reply.split(" ")[:-1]] + [fake.reply.split(" ")[-1]], None)
    finally:
        fake.close()


def test_a_content_filter_stop_is_an_unfinished_answer_named_as_such():
    """`finish_reason: "content_filter"` (the provider withheld the rest) was passed on as a whole answer. It is an
    AnswerCut with reason content_filter, streamed or not, and like the token limit not a failure of the model."""
    import asyncio

    from ragops.answer.llm import FILTERED, AnswerCut, OpenAIChatModel
    from support import FakeLLM

    fake = FakeLLM()
    try:
        fake.finish_reason = "content_filter"
        model = OpenAIChatModel(fake.base_url, "test-model", max_retries=0, deadline_s=60,
                                breaker=CircuitBreaker(threshold=50))
        with pytest.raises(AnswerCut) as cut:
            asyncio.run(model.complete("system", "user"))
        assert (cut.value.kept, cut.value.reason, cut.value.failed) == (fake.reply, FILTERED, False)
        assert "content filter" in str(cut.value) and model.breaker.failures == 0
        pieces, stopped = _streamed(model)
        assert "".join(pieces) == fake.reply and isinstance(stopped, AnswerCut) and stopped.reason == FILTERED
    finally:
        fake.close()
