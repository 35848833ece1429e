"""The backend-neutral rules of the approximate vector index: knob bounds, defaults, parameters, recall."""

import pytest

from ragops.config import Settings
from ragops.errors import StoreUnavailable
from ragops.index.ann import AnnKnob, AnnPolicy, ivf_params, recall_at_k


def test_a_knob_takes_the_configured_defaults_for_what_it_leaves_unset():
    policy = AnnPolicy(nprobes=20, refine_factor=10, ef=-1)
    assert policy.knob(None) == AnnKnob(20, 10, -1)
    assert policy.knob(AnnKnob(nprobes=64)) == AnnKnob(64, 10, -1)
    assert policy.knob(AnnKnob(ef=128)) == AnnKnob(20, 10, 128)


@pytest.mark.parametrize("bad", [dict(nprobes=0), dict(nprobes=10**6), dict(refine_factor=0), dict(refine_factor=101),
                                 dict(ef=-2), dict(ef=5000), dict(nprobes=True), dict(nprobes=2.5), dict(ef="64")])
def test_a_knob_out_of_bounds_is_refused_with_a_clear_error(bad):
    with pytest.raises(StoreUnavailable, match="ANN"):
        AnnKnob(**bad)


def test_the_policy_reads_the_ragops_ann_settings(monkeypatch):
    for name, value in dict(MIN_ROWS="5000", NPROBES="32", REFINE_FACTOR="4", EF="200", MIN_INDEXED_SHARE="0.8",
                            RECALL_FLOOR="0.85", RECALL_SAMPLE="3").items():
        monkeypatch.setenv(f"RAGOPS_ANN_{name}", value)
    assert AnnPolicy.from_settings(Settings()) == AnnPolicy(5000, 32, 4, 200, 0.8, 0.85, 3)
    monkeypatch.setenv("RAGOPS_ANN_NPROBES", "0")
    with pytest.raises(ValueError):
        Settings()


def test_the_index_is_wanted_from_the_threshold_and_kept_down_to_half_of_it():
    policy = AnnPolicy(min_rows=10_000)
    assert not policy.wants_index(9_999, has_index=False)
    assert policy.wants_index(10_000, has_index=False)
    assert policy.wants_index(5_000, has_index=True)  # no flapping at the line
    assert not policy.wants_index(4_999, has_index=True)


def test_partitions_grow_with_the_table():
    assert [ivf_params(n).num_partitions for n in (100, 20_000, 1_000_000)] == [2, 35, 250]
    assert ivf_params(1).num_partitions == 1


def test_recall_at_k():
    assert recall_at_k([["a", "b"], ["c", "x"]], [["a", "b"], ["c", "d"]]) == pytest.approx(0.75)
    assert recall_at_k([], []) == 1.0
