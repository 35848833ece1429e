"""Freshness read from a real registry after real refreshes: last successes and the current quarantine."""

from datetime import datetime, timedelta, timezone

import pytest

from ragops.errors import RefreshBlocked
from ragops.ingest.refresh import Refresher
from ragops.monitoring.freshness import PIPELINES, read_freshness, windows_s
from ragops.registry import Registry
from ragops.registry.models import AuditRun, EvalRun, RefreshRun


def _eval_run(variant: str, created_at: datetime) -> EvalRun:
    return EvalRun(testset="t.jsonl", testset_hash="h", release="r", variant=variant, embedding_model="m",
                   generator="extractive", n=1, metrics={}, comparison={}, duration_s=1.0, created_at=created_at)


def test_an_empty_registry_has_never_succeeded(settings):
    freshness = read_freshness(Registry(settings.registry_url))
    assert freshness.last_success == {p: None for p in PIPELINES}
    assert freshness.quarantined == 0


def test_last_successes_and_the_current_quarantine(settings, corpus, embedder):
    refresher = Refresher(settings, embedder=embedder)
    (corpus / "empty.md").write_text("")
    (corpus / "binary.md").write_bytes(b"\x00\x01junk")
    before = datetime.now(timezone.utc)
    refresher.run()
    registry = refresher.registry
    first = read_freshness(registry)
    assert before <= first.last_success["refresh"] <= datetime.now(timezone.utc)
    assert first.quarantined == 2

    (corpus / "empty.md").write_text("# Fixed\n\nNow it has text.")  # fixed: leaves the quarantine
    (corpus / "binary.md").unlink()  # gone from the source: leaves it too
    refresher.run()
    second = read_freshness(registry)
    assert second.quarantined == 0 and second.last_success["refresh"] > first.last_success["refresh"]

    for path in corpus.rglob("*"):  # a blocked refresh is not a success: the last success stays
        if path.is_file():
            path.unlink()
    with pytest.raises(RefreshBlocked):
        refresher.run()
    with registry.session() as s:
        assert s.query(RefreshRun).filter(RefreshRun.status == "blocked").count() == 1
    assert read_freshness(registry).last_success["refresh"] == second.last_success["refresh"]


def test_evaluation_and_audit_times_ignore_candidate_evaluations(settings):
    registry = Registry(settings.registry_url)
    stable = datetime(2026, 3, 1, 5, 0, tzinfo=timezone.utc)
    with registry.session() as s:
        s.add(_eval_run("stable", stable))
        s.add(_eval_run("candidate", stable + timedelta(days=3)))
        s.add(AuditRun(ts=stable + timedelta(hours=1), period_start=stable - timedelta(days=28), period_end=stable))
    freshness = read_freshness(registry)
    assert freshness.last_success["evaluation"] == stable
    assert freshness.last_success["audit"] == stable + timedelta(hours=1)
    assert freshness.last_success["refresh"] is None


def test_windows_follow_the_settings(settings):
    tuned = settings.model_copy(update={"freshness_refresh_hours": 2.0, "freshness_audit_hours": 0.5})
    assert windows_s(tuned) == {"refresh": 7200.0, "evaluation": settings.freshness_eval_hours * 3600, "audit": 1800.0}
