"""ops_summary: everything the RAG Ops page shows, read (and only read) from a registry the real code filled."""

from datetime import datetime, timezone

import pytest
from sqlalchemy import func, inspect, select

from support import populate_registry
from ragops.errors import StoreUnavailable
from ragops.overview import SECTIONS, ops_summary, page_summary
from ragops.overview.moments import iso
from ragops.overview.summary import _page_registry
from ragops.registry import Registry
from ragops.registry.models import Chunk, EvalRun, RefreshRun, RequestEvent


@pytest.fixture
def populated(settings, corpus, embedder):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    facts = populate_registry(settings, embedder, now)
    return settings, now, facts, ops_summary(settings, now=now)["sections"]


def test_every_section_names_the_dag_that_produces_it(populated):
    *_, sections = populated
    assert [(name, sections[name]["dag_id"]) for name, _, _ in SECTIONS] == [
        ("index", "document_refresh"), ("release", "canary_rollout"), ("evaluation", "evaluation"),
        ("slo", "monitoring_review"), ("health", "health_probe"), ("audit", "mcp_permission_audit"),
        ("tools", "mcp_tool_contracts"), ("gaps", "content_gaps")]


def test_index_versions_quarantine_and_the_last_refresh_of_the_live_index(populated):
    settings, now, facts, sections = populated
    index = sections["index"]
    with facts["registry"].session() as s:
        chunks = s.scalar(select(func.count()).select_from(Chunk))
        refreshed = s.get(RefreshRun, facts["refresh"].run_id).finished_at
    assert index["live"]["id"] == facts["refresh"].index_version
    assert (index["live"]["documents"], index["live"]["chunks"]) == (6, chunks)
    assert index["candidate"]["id"] == facts["candidate"].index_version_id and index["candidate"]["status"] == "candidate"
    assert index["quarantined"]["count"] == 1 and index["quarantined"]["documents"][0]["uri"].endswith("broken.md")
    # the reindex build finished later, but it is not a refresh of the live index
    assert index["last_successful_refresh"] == iso(refreshed)
    assert index["last_refresh"]["status"] == "succeeded"


def test_release_rollout_stage_and_gate_decisions_with_their_evidence(populated):
    *_, facts, sections = populated
    release = sections["release"]
    assert (release["stable"], release["candidate"], release["status"]) == ("live", facts["release"], "running")
    assert (release["stage"], release["percent"], release["stages"]) == (1, 10.0, [10.0, 25.0, 50.0, 100.0])
    hold, start = release["decisions"]
    assert (hold["decision"], start["decision"], start["actor"]) == ("hold", "start", "cli:tester")
    assert "canary" in hold["evidence"] and hold["reason"]


def test_evaluation_trend_on_the_latest_test_set_with_regressions_marked(populated):
    *_, sections = populated
    trend = sections["evaluation"]
    assert trend["testset"] == "bundled.jsonl"  # the older run on another test set is left out
    assert [r["hit_rate"] for r in trend["runs"]] == [0.8, 0.85, 0.6, 0.82]
    assert [r["answer_recall"] for r in trend["runs"]] == [0.5, 0.55, 0.52, 0.56]
    assert [r["regressed"] for r in trend["runs"]] == [False, False, True, False]
    assert trend["runs"][2]["drops"] == ["hit_rate"] and trend["latest"]["metrics"]["hit_rate"] == 0.82


def test_slo_of_the_last_24_hours_with_each_fallback_code(populated):
    *_, sections = populated
    slo = sections["slo"]
    assert (slo["requests"], slo["error_rate"], slo["p95_ms"]) == (40, 0.1, 137.05)
    assert slo["fallback_rates"] == {"no_results": 0.25, "tool_failed": 0.0, "llm_unavailable": 0.0,
                                     "rate_limited": 0.0, "store_unavailable": 0.1}
    assert {s["name"]: s["ok"] for s in slo["slos"]} == {"p95 latency": True, "error rate": False, "availability": False}
    assert len(slo["hourly"]) == 25 and sum(h["requests"] for h in slo["hourly"]) == 40
    assert all(set(h["fallback_rates"]) == set(slo["fallback_rates"]) for h in slo["hourly"])


def test_health_and_latest_audit(populated):
    *_, facts, sections = populated
    assert [(c["component"], c["ok"]) for c in sections["health"]["components"]] == [("registry", True), ("serving", False)]
    audit = sections["audit"]
    assert audit["run"]["id"] == facts["audit"].run_id and audit["run"]["counts"]["high"] == 1
    assert [f["severity"] for f in audit["findings"]] == ["high", "medium", "low"]
    assert audit["findings"][0]["client"] == "<b>bot</b>"  # data stays data; the page escapes it


def test_connected_tools_newest_check_per_tool_worst_first(populated):
    *_, sections = populated
    tools = sections["tools"]["tools"]
    assert [(t["tool"], t["state"], t["contract"]) for t in tools] == [("wiki", "changed", "none"),
                                                                      ("tickets", "unchanged", "passed")]
    assert tools[0]["diff"] == ["description: now says <b>tool</b>"] and tools[1]["latency_ms"] == 12.0


def test_reading_changes_nothing(populated):
    settings, now, facts, _ = populated
    with facts["registry"].session() as s:
        before = [s.scalar(select(func.count()).select_from(m)) for m in (RefreshRun, EvalRun, RequestEvent)]
    ops_summary(settings, now=now)
    with facts["registry"].session() as s:
        assert [s.scalar(select(func.count()).select_from(m)) for m in (RefreshRun, EvalRun, RequestEvent)] == before


def test_an_unmigrated_registry_is_a_clear_error_and_stays_unmigrated(settings):
    with pytest.raises(StoreUnavailable, match="cannot be read"):
        ops_summary(settings)
    assert inspect(Registry(settings.registry_url, migrate=False).engine).get_table_names() == []


def test_a_fresh_registry_summarizes_to_empty_sections(settings):
    Registry(settings.registry_url)
    sections = ops_summary(settings)["sections"]
    assert sections["index"]["live"] is None and sections["evaluation"]["runs"] == []
    assert sections["release"]["status"] == "idle" and sections["audit"]["run"] is None
    assert sections["slo"]["requests"] == 0 and sections["health"]["components"] == []
    assert sections["tools"]["tools"] == []


def test_the_page_reads_the_same_summary_through_one_kept_registry(populated):
    settings, now, _, sections = populated
    assert page_summary(settings, now=now)["sections"] == sections
    before = _page_registry.cache_info()
    assert page_summary(settings, now=now)["sections"] == sections
    after = _page_registry.cache_info()
    assert (after.hits, after.misses) == (before.hits + 1, before.misses)  # no new engine per request


def test_on_postgresql(settings, postgres_url):
    registry = Registry(postgres_url)
    with registry.session() as s:
        s.add(RefreshRun(source="file:///docs", status="succeeded", plan={"quarantined": [{"uri": "u", "reason": "r"}]},
                         finished_at=datetime(2026, 1, 2, tzinfo=timezone.utc)))
        s.add(EvalRun(testset="t", testset_hash="1" * 64, release="live", embedding_model="m", generator="g", n=1,
                      metrics={"hit_rate": 1.0}, duration_s=1.0))
    sections = ops_summary(settings.model_copy(update={"database_url": postgres_url}), registry=registry)["sections"]
    assert sections["index"]["last_successful_refresh"] == "2026-01-02T00:00:00+00:00"
    assert sections["index"]["quarantined"]["count"] == 1 and sections["evaluation"]["runs"][0]["hit_rate"] == 1.0
    registry.dispose()
