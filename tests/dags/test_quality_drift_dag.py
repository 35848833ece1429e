"""quality_drift end to end with dag.test(): the run's logical date ends the window, and Slack (the outbox) hears
about a shifted signal; a steady one stays quiet."""

from datetime import datetime, timedelta, timezone

import pytest

from quality_traffic import write_traffic

AT = datetime(2026, 11, 20, 9, 7, tzinfo=timezone.utc)


@pytest.mark.slow
@pytest.mark.parametrize("refused", [0.10, 0.30], ids=["steady", "shifted"])
def test_quality_drift_alerts_on_the_run_interval(dagbag, ragops_env, outbox, monkeypatch, refused):
    from ragops.registry import Registry

    monkeypatch.setenv("RAGOPS_QUALITY_SUSTAIN_CHECKS", "1")
    registry = Registry(ragops_env.registry_url)
    write_traffic(registry, AT - timedelta(days=10), 7 * 24, per_hour=12, seed=1)
    write_traffic(registry, AT - timedelta(days=1), 24, seed=2, refused=refused)
    registry.dispose()
    run = dagbag.dags["quality_drift"].test(logical_date=AT)
    assert run.state == "success"
    alerts = [m for m in outbox() if m["kind"] == "alert"]
    if refused == 0.10:
        assert alerts == []
    else:
        (alert,) = alerts
        assert alert["text"].startswith("Quality drift: refusal rate of release live (stable)")
        assert "Shifted since 2026-11-19 09:07 UTC" in alert["text"]
