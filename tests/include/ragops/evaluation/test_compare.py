from ragops.evaluation.compare import compare

PREVIOUS = {"hit_rate": 0.9, "answer_token_recall": 0.9, "_run_id": 7}
PREV_Q = {"q1": {"hit": 1, "answer_token_recall": 0.95}, "q2": {"hit": 1, "answer_token_recall": 0.9}}


def test_a_drop_beyond_tolerance_regresses_and_names_questions():
    now_q = {"q1": {"hit": 0, "answer_token_recall": 0.4, "_question": "one?"}, "q2": {"hit": 1, "answer_token_recall": 0.9}}
    result = compare({"hit_rate": 0.5, "answer_token_recall": 0.65}, now_q, PREVIOUS, PREV_Q, {}, 0.03)
    assert result["regressed"] and {d["metric"] for d in result["drops"]} == {"hit_rate", "answer_token_recall"}
    assert [q["id"] for q in result["questions"]] == ["q1"] and result["previous_run_id"] == 7


def test_small_wobble_within_tolerance_is_fine():
    result = compare({"hit_rate": 0.88, "answer_token_recall": 0.89}, {}, PREVIOUS, PREV_Q, {}, 0.03)
    assert not result["regressed"]


def test_floors_apply_without_history():
    result = compare({"hit_rate": 0.4}, {}, None, {}, {"hit_rate": 0.5}, 0.03)
    assert result["regressed"] and result["below_floor"][0]["metric"] == "hit_rate"
