"""A content_gaps run triggered with a logical date ahead (or a host whose clock runs fast) must not store a report
dated in the future: the RAG Ops page shows the report with the newest period end, so it would hide every real
monthly report until that date passed."""

from datetime import datetime, timedelta, timezone

from ragops.gaps import latest_report, run_gaps
from ragops.registry import Registry
from ragops.registry.models import ContentGapReport


def test_a_run_dated_ahead_ends_now_and_a_stored_future_report_hides_nothing(indexed, embedder):
    registry = Registry(indexed.registry_url)
    now = datetime.now(timezone.utc)
    ahead = run_gaps(indexed, timedelta(days=30), now + timedelta(days=365), post=False, registry=registry,
                     embedder=embedder)
    assert datetime.fromisoformat(ahead.period_end) <= datetime.now(timezone.utc)

    real = run_gaps(indexed, timedelta(days=30), now - timedelta(hours=1), post=False, registry=registry,
                    embedder=embedder)
    with registry.session() as s:  # one stored before this fix, dated a year ahead
        s.add(ContentGapReport(period_start=now + timedelta(days=335), period_end=now + timedelta(days=365),
                               report=real.to_dict() | {"period_end": (now + timedelta(days=365)).isoformat()}))
    assert latest_report(registry).period_end == ahead.period_end  # the newest real one, not the future one
    registry.dispose()
