from ragops.answer.extractive import LABEL, extractive_answer
from ragops.index import SearchHit


def _hit(text, i=0):
    return SearchHit(f"c{i}", f"file:///d{i}.md", 1.0, text, "Guide", "Guide")


def test_picks_the_sentences_that_answer_and_cites_them():
    hits = [_hit("Guide\n\nThe weather was fine that day in the valley. Refreshes that would delete more than a fifth "
                 "of the documents are blocked by the guard.\nIt wraps here."),
            _hit("Another passage about the outbox where Slack messages wait when delivery fails.", 1)]
    text, used = extractive_answer("Which refreshes are blocked by the guard?", hits)
    assert text.startswith(LABEL)
    assert "blocked by the guard. [1]" in text and "weather" not in text
    assert used == [0]


def test_joins_hard_wrapped_lines_and_skips_fragments():
    hits = [_hit("Guide\n\nThe refresh DAG runs every week and also\nwhenever the source changes in any way.\n* Short bullet")]
    text, _ = extractive_answer("When does the refresh DAG run?", hits)
    assert "runs every week and also whenever the source changes in any way." in text
    assert "Short bullet" not in text


def test_identical_sentences_are_quoted_once():
    sentence = "Audit logs are kept for ninety days before they are deleted automatically."
    text, used = extractive_answer("How long are audit logs kept?", [_hit(sentence), _hit(sentence, 1)])
    assert text.count("ninety days") == 1 and used == [0]
