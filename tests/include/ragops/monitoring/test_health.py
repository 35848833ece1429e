from ragops.monitoring.health import Probe, record
from ragops.monitoring.report import probe_and_alert
from ragops.notify import Outbox
from ragops.registry import Registry


def test_transitions_alert_once_down_and_once_up(tmp_path):
    registry = Registry(f"sqlite:///{tmp_path / 'r.sqlite'}")
    assert record(registry, [Probe("serving", True, 1.0)]) == []
    [down] = record(registry, [Probe("serving", False, 1.0, "HTTP 503")])
    assert not down.ok and down.detail == "HTTP 503"
    assert record(registry, [Probe("serving", False, 1.0, "HTTP 503")]) == []  # still down: no second alert
    [up] = record(registry, [Probe("serving", True, 1.0, "HTTP 200")])
    assert up.ok and up.since is not None


def test_probes_against_a_dead_serving_url(indexed):
    result = probe_and_alert(indexed, serving_url="http://127.0.0.1:9")  # nothing listens on the discard port
    assert result["probes"] == {"registry": True, "index": True, "serving": False}
    assert result["alerts"] == ["serving:down"]
    assert probe_and_alert(indexed, serving_url="http://127.0.0.1:9")["alerts"] == []
    outbox = Outbox(indexed.outbox_path).read()
    assert [m["text"].split(":")[0] for m in outbox] == ["serving is down"]
