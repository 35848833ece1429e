import pytest

from ragops.errors import RefreshBlocked
from ragops.ingest.planner import check_guards, plan_refresh


def test_plan_classifies_every_document():
    plan = plan_refresh({"a": "1", "b": "2", "c": "9"}, {"b": "2", "c": "3", "d": "4"})
    assert (plan.added, plan.changed, plan.unchanged, plan.deleted) == (["a"], ["c"], ["b"], ["d"])
    assert plan.has_changes
    assert plan_refresh({"b": "2"}, {"b": "2"}, full=True).changed == ["b"]


def test_mass_delete_guard_and_override():
    plan = plan_refresh({"a": "1"}, {"a": "1", "b": "2", "c": "3"})
    with pytest.raises(RefreshBlocked, match="allow-mass-delete"):
        check_guards(plan, 1, 3, 0.2, allow_mass_delete=False)
    check_guards(plan, 1, 3, 0.2, allow_mass_delete=True)


def test_empty_source_guard():
    with pytest.raises(RefreshBlocked, match="lists no documents"):
        check_guards(plan_refresh({}, {"a": "1"}), 0, 1, 0.2, allow_mass_delete=False)


def test_deleting_up_to_the_ratio_is_allowed():
    indexed = {str(i): "x" for i in range(10)}
    listed = {str(i): "x" for i in range(8)}
    check_guards(plan_refresh(listed, indexed), 8, 10, 0.2, allow_mass_delete=False)
