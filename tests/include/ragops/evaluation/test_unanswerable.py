"""Unanswerable sets load strictly, and the rates an evaluation reports count only no_results as a refusal."""

import pytest

from ragops.evaluation.abstention import abstention_rates, load_unanswerable
from ragops.evaluation.testset import InvalidTestset


def test_the_bundled_set_is_balanced_near_and_far():
    items = load_unanswerable().items
    near = [i for i in items if i.category == "near"]
    far = [i for i in items if i.category == "far"]
    assert len(items) >= 40 and len(near) >= 20 and len(far) >= 20


@pytest.mark.parametrize("line, message", [
    ('{"id": "a", "question": "q"}', "needs id, question and category"),
    ('{"id": "a", "question": "q", "category": "middle"}', "near or far"),
    ('{"id": "a", "question": "q", "category": "far"}\n{"id": "a", "question": "r", "category": "far"}', "duplicate"),
])
def test_bad_lines_are_refused_with_their_line_number(tmp_path, line, message):
    path = tmp_path / "u.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(InvalidTestset, match=message):
        load_unanswerable(path)


def test_rates_count_only_no_results_as_refused():
    items = load_unanswerable().items
    near = [i for i in items if i.category == "near"][:2]
    far = [i for i in items if i.category == "far"][:2]
    rates = abstention_rates(near + far, ["no_results", None, "no_results", "llm_unavailable"],
                             [None, None, "no_results", None])
    assert rates == {"abstention_near": 0.5, "abstention_far": 0.5, "false_abstention": 0.25}
