"""Retention reaches the stored content-gap reports: their example questions are what users typed, kept in the
report's JSON, and must be cleared with the questions themselves (docs/privacy.md: after the retention period only
aggregates remain)."""

from datetime import datetime, timedelta, timezone

from ragops.feedback.retention import purge
from ragops.gaps.report import latest_report
from ragops.registry import Registry
from ragops.registry.models import ContentGapReport

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
BEFORE = NOW - timedelta(days=90)


def rep(question, days_ago, naive=False):
    ts = NOW - timedelta(days=days_ago)
    return {"request_id": question[:8], "ts": (ts.replace(tzinfo=None) if naive else ts).isoformat(),
            "question": question, "kind": "refused", "reason": None}


def report(start_days, end_days, representatives):
    cluster = {"rank": 1, "name": "billing, invoices", "terms": ["billing", "invoices"], "users": 5, "questions": 9,
               "refused": 9, "down_voted": 0, "representatives": representatives, "request_ids": ["r1"],
               "documents": [], "belongs_in": None, "new_page": True, "previous": 0, "trend": "new", "reasons": {}}
    return {"period_start": (NOW - timedelta(days=start_days)).isoformat(),
            "period_end": (NOW - timedelta(days=end_days)).isoformat(), "generated_at": NOW.isoformat(),
            "questions": 9, "refused": 9, "down_voted": 0, "users": 5, "capped": False, "clustered": 9,
            "index_version": 1, "embedding_model": "m", "clusters": [cluster]}


def test_old_example_questions_in_gap_reports_are_cleared_and_the_counts_stay(settings):
    settings.ensure_home()
    registry = Registry(settings.registry_url)
    old = report(150, 120, [rep("where is my invoice jane", 130), rep("billing for acme corp", 125, naive=True)])
    spanning = report(100, 70, [rep("invoice for bob", 95), rep("invoice address change", 75)])
    with registry.session() as s:
        for body in (old, spanning):
            s.add(ContentGapReport(period_start=datetime.fromisoformat(body["period_start"]),
                                   period_end=datetime.fromisoformat(body["period_end"]), report=body))

    assert purge(registry, BEFORE, dry_run=True).reports == 2
    done = purge(registry, BEFORE)
    assert done.reports == 2 and "2 content-gap reports" in done.summary_text()
    with registry.session() as s:
        stored = {r.report["period_end"]: r.report for r in s.query(ContentGapReport)}
    questions = [q["question"] for body in stored.values() for q in body["clusters"][0]["representatives"]]
    assert questions == ["invoice address change"]
    for body in stored.values():  # the aggregates stay
        assert body["clusters"][0]["users"] == 5 and body["clusters"][0]["name"] == "billing, invoices"
    assert latest_report(registry).clusters[0].representatives[0]["question"] == "invoice address change"
    assert purge(registry, BEFORE).reports == 0  # idempotent
    registry.dispose()
