from ragops.evaluation.measures import context_rank, context_until, doc_rank, token_recall, tokens


def test_tokens_drop_stop_words_and_punctuation():
    assert tokens("How does the Refresh-guard work, in 2026?") == ["refresh", "guard", "work", "2026"]


def test_answer_token_recall_as_the_rhdh_readme_defines_it():
    assert token_recall("The guard blocks mass deletes", "the GUARD that blocks deletes") == 3 / 4
    assert token_recall("", "anything") == 1.0


def test_context_is_cut_at_the_character_budget():
    context = context_until(["a" * 3000, "b" * 3000, "c" * 10], limit=4000)
    assert len(context) == 4000 + 1 and context.count("b") == 1000 and "c" not in context


def test_doc_rank_by_uri_suffix():
    assert doc_rank(["file:///x/a.md", "file:///x/b.md"], ["b.md"]) == 2
    assert doc_rank(["file:///x/a.md"], ["z.md"]) is None


def test_context_rank_works_both_ways():
    section = "Install the operator. Configure the plugin registry. Restart the pods to apply the change."
    chunk_inside = "Heading\n\nConfigure the plugin registry. Restart the pods."
    assert context_rank(["Heading\n\nunrelated words here", chunk_inside], [section]) == 2
    sentence = "Restart the pods to apply the change."
    assert context_rank([f"Heading\n\n{section} And more text about other things."], [sentence]) == 1
    assert context_rank(["Heading\n\nnothing shared"], [sentence]) is None
