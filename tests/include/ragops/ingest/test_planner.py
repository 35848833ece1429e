import pytest

from ragops.errors import RefreshBlocked
from ragops.ingest.planner import ChunkTally, check_guards, guard_baseline, next_baseline, plan_refresh


def _guard(plan, n_listed, n_current, ratio, allow, *, baseline=None, n_after=None, chunks=None):
    n_after = n_current - len(plan.deleted) + len(plan.added) if n_after is None else n_after
    chunks = chunks or ChunkTally(n_current, n_after, guard_baseline(baseline, n_current))  # one chunk a document
    return check_guards(plan, n_listed=n_listed, n_current=n_current, n_after=n_after,
                        baseline=guard_baseline(baseline, n_current), chunks=chunks, ratio=ratio, allow_mass_delete=allow)


def test_plan_classifies_every_document():
    plan = plan_refresh({"a": "1", "b": "2", "c": "9"}, {"b": "2", "c": "3", "d": "4"})
    assert (plan.added, plan.changed, plan.unchanged, plan.deleted) == (["a"], ["c"], 1, ["d"])
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


# -- the guard counts content too (issue 22, finding 4) ----------------------------------------------------------

def test_blanking_documents_is_refused_like_deleting_them():
    """12 of 16 documents rewritten to "This page moved.": no document deleted, 197 of 214 chunks gone."""
    indexed = {str(i): "x" for i in range(16)}
    plan = plan_refresh({u: "moved" if int(u) < 12 else "x" for u in indexed}, indexed)
    blanked = ChunkTally(214, 17, guard_baseline(214, 214))
    with pytest.raises(RefreshBlocked, match="from 214 to 17 chunks .16 documents before, 16 after, 12 changed") as err:
        _guard(plan, 16, 16, 0.2, False, chunks=blanked)
    assert "197 fewer than the 214 chunks" in str(err.value) and "--allow-mass-delete" in str(err.value)
    assert _guard(plan, 16, 16, 0.2, True, chunks=blanked) is True  # the same override
    assert next_baseline(214, 17, overridden=True) == 17


def test_content_shrinking_a_little_passes_and_cannot_ratchet():
    indexed = {str(i): "x" for i in range(16)}
    plan = plan_refresh({**indexed, "0": "edited"}, indexed)
    assert _guard(plan, 16, 16, 0.2, False, chunks=ChunkTally(214, 180, 214)) is False  # 34 of 214: 16%
    with pytest.raises(RefreshBlocked, match="from 180 to 170 chunks"):  # 44 of the remembered 214: 21%
        _guard(plan, 16, 16, 0.2, False, chunks=ChunkTally(180, 170, guard_baseline(214, 180)))


def test_the_plan_is_the_per_document_comparison_whatever_the_mix():
    """The set-difference plan classifies every document as the one-by-one comparison does."""
    import random

    rng = random.Random(24)
    for _ in range(200):
        uris = [f"u{i}" for i in range(rng.randint(0, 30))]
        indexed = {u: str(rng.randint(0, 2)) for u in uris if rng.random() < 0.7}
        listed = {u: str(rng.randint(0, 2)) for u in uris if rng.random() < 0.7}
        plan = plan_refresh(listed, indexed)
        assert plan.added == sorted(u for u in listed if u not in indexed)
        assert plan.changed == sorted(u for u in listed if u in indexed and listed[u] != indexed[u])
        assert plan.unchanged == sum(1 for u in listed if indexed.get(u) == listed[u])
        assert plan.deleted == sorted(u for u in indexed if u not in listed)
