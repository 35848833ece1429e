"""Property tests: every parser, and chunking, do bounded work on adversarial inputs up to 1 MB and never crash.

Inputs are built the way super-linear regexes are attacked: a prefix, a "pump" repeated up to 1 MB, and a suffix
that makes the match fail at the very end, all from the characters the parsers treat specially. The bound is CPU
time of the parsing thread (a busy machine does not inflate it) with a generous ceiling: a linear parse of 1 MB
takes well under a second here; the cubic ATX heading took about 19 minutes on 8 KB.
"""

import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ragops.ingest.chunking import CHARS_PER_TOKEN, HEADING_SHARE, chunk_document
from ragops.ingest.markup import tokens
from ragops.ingest.parsing import parse

CEILING_S = 30.0
MAX_BYTES = 1_000_000
FRAGMENTS = ["#", "# ", " ", "\t", "\n", "\r\n", "\x0b", "\u2028", "=", "==", "-", "~", "`", "```", "~~~", "*", "+",
             ":", "'", '"', ".", "!", "?", ";", "a", "Z", "é", "<", ">", "</", "<!--", "-->", "<!", "<![", "<?", "<a ",
             "<h1>", "</h1>", "<p>", "<script>", "</script", "<title>", "&", "&amp;", "&#", "&#x", "....", "----", "++++",
             "====", "//", "\x00"]
piece = st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=6).map("".join)
FUZZ = settings(max_examples=12, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _pumped(prefix: str, pump: str, suffix: str, size: int) -> str:
    return prefix + pump * max(1, (size - len(prefix) - len(suffix)) // len(pump)) + suffix


def _cpu_seconds(fn) -> float:
    started = time.thread_time()
    fn()
    return time.thread_time() - started


@pytest.mark.parametrize("suffix", [".md", ".rst", ".adoc", ".html"])
@FUZZ
@given(prefix=piece, pump=piece, tail=piece, size=st.integers(1_000, MAX_BYTES))
def test_every_parser_is_bounded_on_pumped_input(suffix, prefix, pump, tail, size):
    text = _pumped(prefix, pump, tail, size)
    spent = _cpu_seconds(lambda: parse(text, "doc" + suffix))
    assert spent < CEILING_S, f"{suffix}: {spent:.1f} s of CPU for {len(text)} characters ({pump!r} pumped)"


@FUZZ
@given(prefix=piece, pump=piece, tail=piece, size=st.integers(1_000, MAX_BYTES))
def test_chunking_is_bounded_on_pumped_input(prefix, pump, tail, size):
    doc = parse(_pumped(prefix, pump, tail, size), "doc.md")
    words = lambda texts: [len(t.split()) + 1 for t in texts]  # noqa: E731 - a stand-in tokenizer, linear
    spent = _cpu_seconds(lambda: chunk_document(doc, "doc.md", 256, words))
    assert spent < CEILING_S


class CountingTokenizer:
    """A linear stand-in tokenizer that records how many characters chunking made it read.

    `dense` counts every non-space character as a token (a long word costs many tokens); otherwise one per word.
    Both count one extra token per text, as a real tokenizer counts its special tokens."""

    def __init__(self, dense: bool):
        self.dense, self.chars = dense, 0

    def __call__(self, texts):
        self.chars += sum(len(t) for t in texts)
        return [(len(t) - sum(map(str.isspace, t)) if self.dense else len(t.split())) + 1 for t in texts]


def _words_in_order(texts) -> str:
    return "".join("".join(t.split()) for t in texts)


WINDOW = 64
long_heading = st.integers(0, 20_000).map(lambda n: "# " + " ".join(["heading"] * n) + "\n\n")
paragraphs = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=3) | st.sampled_from(["x" * 5_000, "word " * 300]),
                      max_size=60).map("".join)


@FUZZ
@given(heading=long_heading, body=paragraphs, sections=st.integers(1, 50), dense=st.booleans(),
       max_tokens=st.integers(8, WINDOW))
def test_chunks_stay_in_the_window_keep_the_words_and_cost_linear(heading, body, sections, dense, max_tokens):
    """Properties of chunking on hostile input: every chunk within the token window and the character bound; the
    chunks' bodies hold the sections' words in order; and the tokenizer reads, and the chunks hold, characters in
    proportion to the input (a heading line is bounded, so it adds at most a constant per section and per chunk)."""
    text = heading + "\n\n".join(f"## s{i}\n\n{body}" for i in range(sections))
    doc = parse(text, "doc.md")
    count = CountingTokenizer(dense)
    chunks = chunk_document(doc, "doc.md", max_tokens, count, WINDOW)
    read = count.chars
    max_chars = WINDOW * CHARS_PER_TOKEN
    assert all(c.n_tokens <= WINDOW and len(c.text) <= max_chars for c in chunks)
    assert all(count([c.heading])[0] <= WINDOW // HEADING_SHARE for c in chunks)
    bodies = [c.text[len(c.heading) + 2:] if c.heading else c.text for c in chunks]
    assert _words_in_order(bodies) == _words_in_order(s.text for s in doc.sections)
    heading_line = max_chars // HEADING_SHARE + 2
    assert sum(len(c.text) for c in chunks) <= len(text) + len(chunks) * heading_line
    assert len(chunks) <= len(text)
    assert read <= 8 * (len(text) + (len(doc.sections) + len(chunks)) * heading_line)  # measured: under 4


@settings(max_examples=300, deadline=None, database=None)
@given(text=st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=3), max_size=120).map("".join))
@pytest.mark.parametrize("suffix", [".md", ".rst", ".adoc", ".html", ".txt"])
def test_no_input_crashes_a_parser(suffix, text):
    doc = parse(text, "doc" + suffix)
    assert isinstance(doc.title, str) and all(isinstance(s.text, str) for s in doc.sections)


@settings(max_examples=300, deadline=None, database=None)
@given(text=st.lists(st.sampled_from(FRAGMENTS), max_size=200).map("".join))
def test_the_html_scanner_only_moves_forward(text):
    """Structural: the scanner never yields more text than it was given (it cannot re-read input)."""
    total = sum(len(value) for kind, value in tokens(text) if kind == "data")
    assert total <= len(text)
