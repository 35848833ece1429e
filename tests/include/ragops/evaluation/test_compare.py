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


def test_a_drop_in_abstention_or_a_rise_in_false_refusals_regresses():
    previous = {"abstention_near": 0.84, "abstention_far": 1.0, "false_abstention": 0.02, "_run_id": 3}
    prev_q = {"unanswerable:near-01": {"refused": 1.0}}
    now_q = {"unanswerable:near-01": {"refused": 0.0, "_question": "FIPS on RHEL?"}}
    result = compare({"abstention_near": 0.6, "abstention_far": 1.0, "false_abstention": 0.02}, now_q, previous,
                     prev_q, {}, 0.03)
    assert result["regressed"] and [d["metric"] for d in result["drops"]] == ["abstention_near"]
    assert [q["id"] for q in result["questions"]] == ["unanswerable:near-01"]  # now answered: named for a reader
    result = compare({"abstention_near": 0.84, "abstention_far": 1.0, "false_abstention": 0.1}, {}, previous, {}, {},
                     0.03)
    assert result["regressed"] and [d["metric"] for d in result["drops"]] == ["false_abstention"]
    assert not compare(previous | {"false_abstention": 0.01}, {}, previous, {}, {}, 0.03)["regressed"]
