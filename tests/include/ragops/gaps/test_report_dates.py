"""A content_gaps run triggered with a logical date ahead (or a host whose clock runs fast) must not store a report
dated in the future: the RAG Ops page shows the report with the newest period end, so it would hide every real
monthly report until that date passed. Such a run is refused, as the drift check refuses a future window."""

from datetime import datetime, timedelta, timezone

import pytest

from ragops.errors import RagopsError
from ragops.gaps import latest_report, run_gaps
from ragops.registry import Registry
from ragops.registry.models import ContentGapReport


def test_a_run_dated_ahead_is_refused_and_a_stored_future_report_hides_nothing(indexed, embedder):
    registry = Registry(indexed.registry_url)
    now = datetime.now(timezone.utc)
    with pytest.raises(RagopsError, match="in the future"):
        run_gaps(indexed, timedelta(days=30), now + timedelta(days=365), post=False, registry=registry,
                 embedder=embedder)
    assert latest_report(registry) is None  # nothing stored

    real = run_gaps(indexed, timedelta(days=30), now - timedelta(hours=1), post=False, registry=registry,
                    embedder=embedder)
    with registry.session() as s:  # one stored before this fix, dated a year ahead
        s.add(ContentGapReport(period_start=now + timedelta(days=335), period_end=now + timedelta(days=365),
                               report=real.to_dict() | {"period_end": (now + timedelta(days=365)).isoformat()}))
    assert latest_report(registry).period_end == real.period_end  # the newest real one, not the future one
    registry.dispose()
