import pytest

from ragops.errors import RefreshBlocked
from ragops.ingest.planner import check_guards, guard_baseline, next_baseline, plan_refresh


def _guard(plan, n_listed, n_current, ratio, allow, *, baseline=None, n_after=None):
    n_after = n_current - len(plan.deleted) + len(plan.added) if n_after is None else n_after
    return check_guards(plan, n_listed=n_listed, n_current=n_current, n_after=n_after,
                        baseline=guard_baseline(baseline, n_current), ratio=ratio, allow_mass_delete=allow)


def test_plan_classifies_every_document():
    plan = plan_refresh({"a": "1", "b": "2", "c": "9"}, {"b": "2", "c": "3", "d": "4"})
    assert (plan.added, plan.changed, plan.unchanged, plan.deleted) == (["a"], ["c"], ["b"], ["d"])
    assert plan.has_changes
    assert plan_refresh({"b": "2"}, {"b": "2"}, full=True).changed == ["b"]


def test_mass_delete_guard_and_override():
    plan = plan_refresh({"a": "1"}, {"a": "1", "b": "2", "c": "3"})
    with pytest.raises(RefreshBlocked, match="allow-mass-delete"):
        _guard(plan, 1, 3, 0.2, False)
    assert _guard(plan, 1, 3, 0.2, True) is True  # the override was needed


def test_empty_source_guard():
    with pytest.raises(RefreshBlocked, match="lists no documents"):
        _guard(plan_refresh({}, {"a": "1"}), 0, 1, 0.2, False)


def test_deleting_up_to_the_ratio_is_allowed():
    indexed = {str(i): "x" for i in range(10)}
    listed = {str(i): "x" for i in range(8)}
    assert _guard(plan_refresh(listed, indexed), 8, 10, 0.2, False) is False


def test_small_deletions_cannot_ratchet_the_baseline_down():
    """Finding 8: 28 documents, 5 deleted, then 4 more: 32% gone, and the second step is refused."""
    indexed = {str(i): "x" for i in range(28)}
    first = plan_refresh({str(i): "x" for i in range(23)}, indexed)
    assert _guard(first, 23, 28, 0.2, False, baseline=28) is False
    baseline = next_baseline(28, 23, overridden=False)
    assert baseline == 28  # deletions do not lower the memory
    second = plan_refresh({str(i): "x" for i in range(19)}, {str(i): "x" for i in range(23)})
    with pytest.raises(RefreshBlocked, match="fewer than the 28"):
        _guard(second, 19, 23, 0.2, False, baseline=baseline)
    assert _guard(second, 19, 23, 0.2, True, baseline=baseline) is True
    assert next_baseline(baseline, 19, overridden=True) == 19  # the override resets it


def test_additions_raise_the_baseline_and_replacements_count_as_kept():
    assert next_baseline(28, 40, overridden=False) == 40
    assert guard_baseline(28, 35) == 35  # the index holds more than remembered (an older registry)
    plan = plan_refresh({str(i): "x" for i in range(10, 40)}, {str(i): "x" for i in range(30)})  # 10 out, 10 in
    assert _guard(plan, 30, 30, 0.2, False, baseline=30) is False
