"""Weak pairs from the corpus: the right positives, hard negatives outside the positive's section, a section split."""

from ragops.training.pairs import BM25, CorpusChunk, build_pairs, data_hash, split


def _corpus() -> list[CorpusChunk]:
    sections = {
        ("install.md", "Installing > Installing the Operator"): [
            "Open the OperatorHub in the web console and search for the Developer Hub operator before you begin.",
            "Select the channel and click Install, then wait until the operator reports that it succeeded."],
        ("install.md", "Installing > Configuring a route"): [
            "Create a route for the Developer Hub service so that users reach it from outside the cluster network.",
            "The operator creates the route when the spec sets route enabled, which is the default for new hubs."],
        ("plugins.md", "Plugins > Enabling dynamic plugins"): [
            "Dynamic plugins load at start-up from the dynamic plugins config map that the operator mounts for you.",
            "Set disabled to false for each plugin package you want, then restart the Developer Hub pods again."],
        ("plugins.md", "Plugins > Removing a plugin"): [
            "To remove a plugin, delete its package entry or set disabled to true and restart the pods afterwards."],
    }
    chunks = []
    for (doc, heading), texts in sections.items():
        for i, text in enumerate(texts):
            ordinal = len([c for c in chunks if c.doc_uri == doc])
            chunks.append(CorpusChunk(f"{doc}-{ordinal}", doc, ordinal, heading, doc.split(".")[0].title(),
                                      f"{heading}\n\n{text}"))
    return chunks


def test_heading_pairs_match_on_content_and_negatives_lie_in_other_sections():
    chunks = _corpus()
    pairs = build_pairs(chunks, negatives=2)
    heading = [p for p in pairs if p.kind == "heading"]
    assert {p.query for p in heading} >= {"Installing the Operator", "Enabling dynamic plugins"}
    for pair in heading:
        assert not pair.positive.startswith("Installing") and not pair.positive.startswith("Plugins")  # no heading
        section_bodies = {c.body for c in chunks if "|".join(c.section) == pair.section}
        assert pair.positive in section_bodies
        assert pair.negatives and not set(pair.negatives) & section_bodies
    assert {p.kind for p in pairs} == {"heading", "title", "neighbour"}


def test_neighbour_pairs_point_to_the_adjacent_chunk_of_the_same_section():
    chunks = _corpus()
    for pair in (p for p in build_pairs(chunks) if p.kind == "neighbour"):
        [source] = [c for c in chunks if pair.query in " ".join(c.body.split())]
        [target] = [c for c in chunks if c.text == pair.positive]
        assert source.section == target.section and abs(source.ordinal - target.ordinal) == 1


def test_pairs_are_deterministic_and_hashed():
    chunks = _corpus()
    first, again = build_pairs(chunks, seed=3), build_pairs(list(reversed(chunks)), seed=3)
    assert first == again and data_hash(first) == data_hash(again)
    assert data_hash(build_pairs(chunks[:-1], seed=3)) != data_hash(first)


def test_split_never_puts_one_section_on_both_sides():
    train, held = split(build_pairs(_corpus()), held_out=0.3)
    assert train and held
    assert not {p.section for p in train} & {p.section for p in held}


def test_bm25_ranks_the_chunk_that_shares_rare_words_first():
    index = BM25(["the operator installs the hub", "dynamic plugins config map", "remove a plugin package"])
    assert index.top("dynamic plugins", 3)[0] == 1
    assert index.top("nothing matches this", 3) == []
