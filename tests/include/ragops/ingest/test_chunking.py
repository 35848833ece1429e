import pytest

from ragops.errors import ParseBudgetExceeded
from ragops.ingest.chunking import CHARS_PER_TOKEN, chunk_document
from ragops.ingest.parsing import ParseBudget, parse


def _doc(paragraphs):
    return parse("# Guide\n\n" + "\n\n".join(paragraphs), "file:///g.md")


def test_chunks_respect_the_token_limit(embedder):
    paragraphs = [f"Paragraph {i} " + "word " * 60 for i in range(20)]
    chunks = chunk_document(_doc(paragraphs), "file:///g.md", 128, embedder.count_tokens)
    assert len(chunks) > 5
    assert all(c.n_tokens <= 128 for c in chunks)
    assert all(c.text.startswith("Guide\n\n") for c in chunks)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_oversized_paragraph_is_split(embedder):
    chunks = chunk_document(_doc(["long sentence. " * 200]), "file:///g.md", 64, embedder.count_tokens)
    assert len(chunks) > 3 and all(c.n_tokens <= 64 for c in chunks)


def test_ids_are_stable_and_an_edit_changes_only_its_chunk(embedder):
    paragraphs = [f"Section text {i} " + "alpha " * 50 for i in range(8)]
    before = chunk_document(_doc(paragraphs), "file:///g.md", 128, embedder.count_tokens)
    again = chunk_document(_doc(paragraphs), "file:///g.md", 128, embedder.count_tokens)
    assert [c.chunk_id for c in before] == [c.chunk_id for c in again]
    edited = list(paragraphs)
    edited[5] = edited[5].replace("alpha", "beta", 1)
    after = chunk_document(_doc(edited), "file:///g.md", 128, embedder.count_tokens)
    changed = {c.chunk_id for c in after} - {c.chunk_id for c in before}
    assert len(changed) == 1
    assert "beta" in next(c.text for c in after if c.chunk_id in changed)


def test_repeated_content_gets_distinct_ids(embedder):
    doc = parse("# A\n\nsame\n\n# A\n\nsame", "file:///d.md")
    chunks = chunk_document(doc, "file:///d.md", 128, embedder.count_tokens)
    assert len(chunks) == 2 and chunks[0].chunk_hash == chunks[1].chunk_hash
    assert chunks[0].chunk_id != chunks[1].chunk_id


# -- linear cost on hostile input (issue 22, finding 1) -----------------------------------------------------------

def _body(chunk):
    return chunk.text[len(chunk.heading) + 2:] if chunk.heading else chunk.text


def test_a_long_heading_is_capped_to_a_quarter_of_the_window(embedder):
    heading = " ".join(f"word{i}" for i in range(5_000))
    doc = parse(f"# {heading}\n\n" + "\n\n".join(f"Paragraph {i} " + "text " * 40 for i in range(30)), "file:///h.md")
    chunks = chunk_document(doc, "file:///h.md", 128, embedder.count_tokens, 256)
    assert len(chunks) >= 10
    assert all(c.n_tokens <= 256 for c in chunks)
    assert all(embedder.count_tokens([c.heading])[0] <= 256 // 4 for c in chunks)
    assert chunks[0].heading.startswith("word0 word1 word2") and heading.startswith(chunks[0].heading)
    assert all(c.text.startswith(chunks[0].heading + "\n\n") for c in chunks)  # the same prefix on every chunk


def test_a_line_without_spaces_is_split_by_characters(embedder):
    line = "x" * 1_000_000  # one unknown token to the tokenizer, however long
    doc = parse(f"# Title\n\n{line}", "file:///l.md")
    chunks = chunk_document(doc, "file:///l.md", 128, embedder.count_tokens, 256)
    assert all(len(c.text) <= 256 * CHARS_PER_TOKEN and c.n_tokens <= 256 for c in chunks)
    assert "".join(_body(c) for c in chunks) == line


def test_chunking_spends_the_document_parse_budget():
    class SteppingClock:  # one second per look at the clock
        now = 0.0

        def __call__(self):
            self.now += 1.0
            return self.now

    words = lambda texts: [len(t.split()) + 1 for t in texts]  # noqa: E731
    doc = parse("# T\n\n" + "\n\n".join(f"p{i}" for i in range(500)), "file:///b.md")
    with pytest.raises(ParseBudgetExceeded, match="parse took too long"):
        chunk_document(doc, "file:///b.md", 128, words, budget=ParseBudget(5, SteppingClock()))
    assert len(chunk_document(doc, "file:///b.md", 128, words, budget=ParseBudget(50, SteppingClock()))) > 1
