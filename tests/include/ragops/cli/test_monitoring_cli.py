"""`ragops monitor quality`: one drift check from the command line, JSON on stdout, recorded like the DAG's."""

import json
from datetime import datetime, timedelta, timezone

from quality_traffic import write_traffic
from ragops.registry import Registry

AT = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def test_monitor_quality_prints_the_check_and_records_it(settings, cli):
    registry = Registry(settings.registry_url)
    write_traffic(registry, AT - timedelta(days=10), 7 * 24, per_hour=12, seed=1)
    write_traffic(registry, AT - timedelta(days=1), 24, seed=2, refused=0.3)
    out = json.loads(cli(settings, "monitor", "quality", "--at", AT.isoformat(), "--json",
                         env={"RAGOPS_QUALITY_SUSTAIN_CHECKS": "1"}).stdout)
    assert out["window"] == [(AT - timedelta(days=1)).isoformat(), AT.isoformat()]
    assert out["shifted"] == ["refusal_rate:live:stable"]
    assert {r["signal"] for r in out["signals"]} == {"refusal_rate", "evidence", "similarity", "downvote_share",
                                                     "citation_followed"}
    human = cli(settings, "monitor", "quality", "--at", AT.isoformat()).stdout
    assert "live (stable) refusal_rate" in human and "steady" in human


def test_a_bad_time_is_a_clear_error(settings, cli):
    done = cli(settings, "monitor", "quality", "--at", "yesterday", "--json", check=False)
    assert done.returncode != 0 and "is not an ISO date" in json.loads(done.stdout)["error"]["message"]
