"""The request event: one builder for the serving app and `ragops ask`, marking the gate's probe traffic."""

from ragops.monitoring.events import request_event
from ragops.notify.blocks import rollout_decision
from ragops.releases import hash_user


def test_the_request_event_hashes_the_user_and_marks_probes_only_as_told():
    row = request_event("r1", "/v1/ask", "ann", 200, 12.5, variant="canary", release_id=3, chunk_ids=["c1"])
    assert row["user_hash"] == hash_user("ann") and "ann" not in str(row)
    assert row["synthetic"] is False and row["verified"] is False
    assert row["variant"] == "canary" and row["chunk_ids"] == ["c1"]
    assert request_event("r2", "/v1/ask", "ragops-probe:ab-1", 200, 9.0)["synthetic"] is False  # a name proves nothing
    probe = request_event("r3", "/v1/ask", "key:ragops-probe\0q1", 200, 9.0, verified=True, synthetic=True)
    assert probe["synthetic"] is True and probe["verified"] is True


def test_a_decision_posts_what_was_ruled_out():
    evidence = {"canary": {"requests": 900, "users": 300, "probes": 0, "error_rate": 0.01, "fallback_rate": 0.05,
                           "p95_ms": 40.0},
                "stable": {"requests": 8000, "users": 2500, "error_rate": 0.011, "fallback_rate": 0.05, "p95_ms": 39.0},
                "metrics": {"error_rate": {"at_most": 0.014, "at_least": -0.02, "verdict": "within"},
                            "fallback_rate": {"at_most": 0.03, "at_least": -0.03, "verdict": "within"},
                            "latency": {"at_most": -0.04, "at_least": -0.05, "verdict": "within"}},
                "latency_limit_ms": {"users": 139.0}, "confidence": "95%"}
    message = rollout_decision({"decision": "promote", "candidate": "reindex-v4", "from_percent": 10.0,
                                "to_percent": 25.0, "evidence": evidence,
                                "reason": "error rate at most +1.4 points at 95% (allowed +2.0 points)"})
    assert "error rate at most +1.4 points at 95%" in message.text
    fields = str(message.blocks[1])
    assert "at most +1.4 pts" in fields and "900 (300)" in fields and "40.0 / 39.0 / 139.0" in fields
