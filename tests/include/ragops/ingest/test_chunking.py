from ragops.ingest.chunking import chunk_document
from ragops.ingest.parsing import parse


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
