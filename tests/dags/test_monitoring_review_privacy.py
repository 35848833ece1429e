"""monitoring_review's privacy task with dag.test(): question text past the retention period is cleared, the rest stays."""

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from support import task_states


@pytest.mark.slow
def test_monitoring_review_clears_question_text_past_retention(dagbag, ragops_env, outbox, monkeypatch):
    from ragops.monitoring.events import EventWriter, request_event
    from ragops.registry import Registry
    from ragops.registry.models import RequestEvent

    monkeypatch.setenv("RAGOPS_QUESTION_RETENTION_DAYS", "30")
    registry = Registry(ragops_env.registry_url)
    writer = EventWriter(registry)
    now = datetime.now(timezone.utc)
    for rid, age in (("old", 45), ("recent", 2)):
        writer.record("request", **request_event(rid, "/v1/ask", "u", 200, 30.0, question=f"{rid} question",
                                                 similarity=0.7, coverage=0.6), ts=now - timedelta(days=age))
    writer.close()

    run = dagbag.dags["monitoring_review"].test()
    assert run.state == "success" and task_states(run)["purge_question_text"] == "success", task_states(run)
    with registry.session() as s:
        rows = {r.request_id: r for r in s.scalars(select(RequestEvent))}
    registry.dispose()
    assert rows["old"].question is None and rows["old"].similarity == 0.7  # the text goes, the scores stay
    assert rows["recent"].question == "recent question"
