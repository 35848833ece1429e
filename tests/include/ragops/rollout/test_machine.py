"""The rollout state machine without traffic or a model: what the gate reads from the registry."""

from ragops.evaluation.testset import load_testset
from ragops.registry import Registry
from ragops.registry.models import EvalRun
from ragops.releases import create_release
from ragops.rollout.machine import Rollout


def _run(release: str, testset_hash: str, status: str) -> EvalRun:
    return EvalRun(testset="t.jsonl", testset_hash=testset_hash, release=release, variant="candidate",
                   embedding_model="m", generator="g", n=12, metrics={"hit_rate": 1.0},
                   comparison={"baseline_run_id": None}, status=status, duration_s=1.0)


def test_the_gate_reads_the_candidates_run_on_the_current_test_set(settings):
    """A newer run on another test set (an old or ad hoc one) does not stand for the candidate's evaluation."""
    registry = Registry(settings.registry_url)
    rollout = Rollout(settings, registry)
    create_release(registry, "cand", None, {}, "test")
    rollout.start("cand", "test")
    with registry.session() as s:
        current = _run("cand", load_testset(settings.eval_testset).sha256, "ok")
        s.add(current)
        s.flush()
        current_id = current.id
        s.add(_run("cand", "0" * 64, "regressed"))  # newer, on another test set
    decision = rollout.step()
    assert decision.decision != "rollback"
    assert decision.evidence["evaluation"]["run_id"] == current_id


def test_a_run_only_on_another_test_set_is_no_evaluation(settings):
    registry = Registry(settings.registry_url)
    rollout = Rollout(settings, registry)
    create_release(registry, "cand", None, {}, "test")
    rollout.start("cand", "test")
    with registry.session() as s:
        s.add(_run("cand", "0" * 64, "ok"))
    decision = rollout.step()
    assert decision.decision == "hold" and decision.evidence["evaluation"] is None
