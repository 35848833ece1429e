"""Notifiers against a local HTTP server that speaks the Slack Web API (through slack_sdk's base_url)."""

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from support import serve_in_thread

from ragops.notify import Outbox, OutboxNotifier, SlackNotifier, build_notifier
from ragops.notify.blocks import alert, refresh_report


class FakeSlack:
    def __init__(self):
        self.posted: list[dict] = []
        self.uploads: list[bytes] = []
        self.mode = "ok"  # ok | down | error | upload_down
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if fake.mode == "down":
                    self.send_response(503)
                    self.end_headers()
                    return
                if self.path.endswith("files.getUploadURLExternal"):
                    reply = {"ok": True, "file_id": f"F{len(fake.uploads) + 1}",
                             "upload_url": f"{fake.url.rsplit('/api/', 1)[0]}/upload"}
                elif self.path.endswith("/upload"):
                    if fake.mode == "upload_down":
                        self.send_response(500)
                        self.end_headers()
                        return
                    fake.uploads.append(body)
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(b"OK")
                    return
                elif self.path.endswith("files.completeUploadExternal"):
                    reply = {"ok": True, "files": [{"id": "F1"}]}
                elif self.path.endswith("chat.postMessage"):
                    payload = json.loads(body or b"{}") if body.startswith(b"{") else dict(
                        __import__("urllib.parse").parse.parse_qsl(body.decode()))
                    if fake.mode == "error":
                        reply = {"ok": False, "error": "channel_not_found"}
                    else:
                        fake.posted.append(payload)
                        reply = {"ok": True, "channel": payload.get("channel"), "ts": "1.0"}
                else:
                    reply = {"ok": False, "error": "unknown_method"}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"
        self.thread = serve_in_thread(self.server)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slack():
    server = FakeSlack()
    yield server
    server.close()


REPORT = {"run_id": 3, "documents": {"added": 1, "changed": 2, "deleted": 0, "unchanged": 5, "quarantined": 1},
          "chunks": {"embedded": 4, "reused": 10, "deleted": 2}, "index_version": 7, "duration_s": 1.5,
          "quarantine": [{"uri": "file:///x.md", "reason": "binary content"}]}


def test_without_a_token_messages_go_to_the_outbox(settings):
    notifier = build_notifier(settings)
    assert isinstance(notifier, OutboxNotifier)
    assert notifier.send(refresh_report(REPORT, "file:///docs"))
    [record] = Outbox(settings.outbox_path).read()
    assert record["text"].startswith("Document refresh: 1 added, 2 changed")
    assert record["blocks"][0]["type"] == "header" and "binary content" in json.dumps(record["blocks"])


def test_slack_delivery_through_the_web_api(slack, tmp_path):
    notifier = SlackNotifier("xoxb-test", "#ops", Outbox(tmp_path / "outbox.jsonl"), base_url=slack.url)
    assert notifier.send(alert("Refresh blocked", "too many deletions", "override with --allow-mass-delete"))
    assert slack.posted[0]["channel"] == "#ops" and slack.posted[0]["text"].startswith("Refresh blocked")
    assert "allow-mass-delete" in json.dumps(slack.posted[0]["blocks"])
    assert Outbox(tmp_path / "outbox.jsonl").read() == []


@pytest.mark.parametrize("mode", ["down", "error"])
def test_undelivered_messages_wait_and_go_out_next_time(slack, tmp_path, mode):
    outbox = Outbox(tmp_path / "outbox.jsonl")
    notifier = SlackNotifier("xoxb-test", "#ops", outbox, base_url=slack.url, timeout=2)
    notifier.client.retry_handlers.clear()  # fail fast in the test instead of retrying a 503
    slack.mode = mode
    assert not notifier.send(refresh_report(REPORT, "file:///docs"))
    assert [r["status"] for r in outbox.read()] == ["pending"]
    slack.mode = "ok"
    assert notifier.send(alert("Next", "second message"))
    assert [p["text"].split(":")[0] for p in slack.posted] == ["Document refresh", "Next"]
    assert outbox.read() == []


def test_report_with_a_chart_is_posted_then_uploaded(slack, tmp_path):
    chart = tmp_path / "chart.png"
    chart.write_bytes(b"\x89PNG fake chart")
    outbox = Outbox(tmp_path / "outbox.jsonl")
    notifier = SlackNotifier("xoxb-test", "C123", outbox, base_url=slack.url, timeout=2)
    notifier.client.retry_handlers.clear()
    message = refresh_report(REPORT, "file:///docs")
    message.files = [str(chart)]
    slack.mode = "upload_down"
    assert not notifier.send(message)
    assert len(slack.posted) == 1 and slack.uploads == []
    [waiting] = outbox.read()
    assert waiting["posted"] is True and waiting["files"] == [str(chart)]
    slack.mode = "ok"
    assert notifier.flush() == (1, 0)
    assert len(slack.posted) == 1, "the text was not posted twice"
    assert slack.uploads and b"fake chart" in slack.uploads[0]


# -- Slack markup injection (finding 12) ---------------------------------------------------------------------------

HOSTILE = "<!channel> <@U024BE7LH> <https://evil.example|docs> & co"


def _texts(node):
    """Every text Slack would parse as mrkdwn: mrkdwn objects in the blocks, and the message's fallback text."""
    if isinstance(node, list):
        return [t for n in node for t in _texts(n)]
    if isinstance(node, dict):
        own = [node["text"]] if node.get("type") == "mrkdwn" else []
        return own + [t for k, v in node.items() if k != "text" or not isinstance(v, str) for t in _texts(v)]
    return []


def _assert_inert(message):
    texts = _texts(message.blocks) + [message.text]
    assert any("&lt;!channel&gt;" in t for t in texts), texts  # the hostile string is shown, escaped
    for text in texts:
        assert "<!" not in text and "<@" not in text and "<http" not in text
        assert "& co" not in text  # a bare ampersand is escaped too


def test_every_builder_escapes_user_controlled_strings():
    from ragops.notify import blocks

    report = dict(REPORT, quarantine=[{"uri": f"file:///docs/{HOSTILE}.md", "reason": f"binary {HOSTILE}"}])
    _assert_inert(blocks.refresh_report(report, f"file:///{HOSTILE}"))
    _assert_inert(blocks.alert("Document refresh failed", f"cannot read file:///docs/{HOSTILE}.md", HOSTILE))
    _assert_inert(blocks.health_transition(HOSTILE, True, HOSTILE, None))
    _assert_inert(blocks.rollout_decision({"decision": "rollback", "candidate": HOSTILE, "from_percent": 10,
                                           "to_percent": 0, "reason": HOSTILE, "evidence": {}}))
    _assert_inert(blocks.audit_report({"counts": {"high": 1}, "period_start": "2026-01-01", "period_end": "2026-02-01",
                                       "findings": [{"severity": "high", "message": f"client {HOSTILE} used a tool"}]}))
    metrics = {"hit_rate": 0.5, "answer_token_recall": 0.4}
    _assert_inert(blocks.eval_report({"metrics": metrics, "comparison": {
        "regressed": True, "drops": [], "below_floor": [],
        "questions": [{"id": HOSTILE, "question": HOSTILE, "was": 1.0, "now": 0.0, "worse": True,
                           "lost": [HOSTILE], "gained": []}]},
        "release": HOSTILE, "variant": "stable", "n": 1, "index_version_id": 1, "generator": "extractive",
        "testset": "/x/t.jsonl", "run_id": 1, "duration_s": 1.0}, None))
    _assert_inert(blocks.monitoring_digest({
        "overall": {"requests": 1, "p50_ms": 1, "p95_ms": 1, "p99_ms": 1, "error_rate": 0, "fallback_rate": 0,
                    "rate_limited": 0, "fallbacks": {}, "disconnects": 0, "disconnect_rate": 0.0, "truncated": 0},
        "slos": [], "variants": {"stable": {}}, "health": {}, "anomalies": [{"message": HOSTILE}],
        "start": "2026-01-01T00:00", "end": "2026-01-02T00:00"}))
    tool = {"tool": HOSTILE, "server_url": f"http://x/{HOSTILE}", "detail": HOSTILE, "contract": "failed",
            "probes": [{"name": HOSTILE, "ok": False, "problems": [HOSTILE]}], "latency_ms": None, "slower": HOSTILE,
            "red": True}
    counts = {"unchanged": 0, "changed": 1, "missing": 0, "unpinned": 1, "duplicate": 1, "down": 0, "failing": 2,
              "held": 1, "slower": 1}
    message = blocks.tool_contracts_report({"counts": counts, "tools": [
        tool | {"state": "changed", "summary": [HOSTILE], "diff": [{"path": HOSTILE, "was": HOSTILE, "now": {"x": HOSTILE}}]},
        tool | {"state": "unpinned"}, tool | {"state": "duplicate"},
        tool | {"state": "unchanged", "held": True, "held_reason": HOSTILE}]})
    _assert_inert(message)
    assert "&amp;amp;" not in str(message.blocks)  # escaped once, by the one escape helper


def test_escaping_keeps_within_slack_limits():
    from ragops.notify import blocks

    message = blocks.alert("x", "<" * 5000)
    section = message.blocks[1]["text"]["text"]
    assert len(section) <= 3000 and len(message.text) <= 3000
    assert section.endswith("&lt;")  # never a cut entity


def test_an_evaluation_report_names_a_cumulative_decline_and_its_reference():
    from ragops.notify import blocks

    comparison = {"regressed": True, "drops": [], "below_floor": [], "questions": [], "baseline_run_id": 5,
                  "cumulative": {"reference_run_id": 1, "declined": True, "max_drop": 0.1, "declines": [
                      {"metric": "hit_rate", "reference": 1.0, "current": 0.8333, "lost": 2, "gained": 0,
                       "p": 0.25, "drop": 0.1667, "significant": False}]}}
    message = blocks.eval_report({"metrics": {"hit_rate": 0.8333}, "comparison": comparison, "release": "live",
                                  "variant": "stable", "n": 12, "index_version_id": 1, "generator": "extractive",
                                  "testset": "/x/t.jsonl", "run_id": 7, "duration_s": 1.0}, {"hit_rate": 0.9167})
    text = str(message.blocks)
    assert "declined since reference run 1" in text and "1.000 → 0.833" in text and "2 questions lost" in text


def test_a_rollout_short_of_traffic_says_so_and_asking_a_person_is_an_alert():
    from ragops.notify.blocks import rollout_decision

    low = {"action": "raise_share", "to_percent": 25.0, "users": 10, "requests": 30, "min_users": 20,
           "min_requests": 50, "percent": 10.0, "horizon": "2026-01-06T08:00:00+00:00", "projected_users": 10.0,
           "projected_requests": 30.0}
    decision = {"decision": "raise", "candidate": "cand", "from_percent": 10.0, "to_percent": 25.0,
                "reason": "low traffic", "evidence": {"low_traffic": low}}
    raised = rollout_decision(decision)
    fields = json.dumps(raised.blocks)
    assert "share raised to 25%" in fields and "10 (30)" in fields and "20 users, 50 requests" in fields
    assert raised.kind == "report" and ":arrow_upper_right:" in fields
    asked = rollout_decision(decision | {"decision": "hold",
                                         "evidence": {"low_traffic": low | {"action": "ask_a_person"}}})
    assert "needs a person" in json.dumps(asked.blocks) and asked.kind == "alert"
    assert rollout_decision(decision | {"decision": "hold", "evidence": {}}).kind == "report"


def test_slow_evidence_names_the_unsure_metrics_and_asking_a_person_is_an_alert():
    from ragops.notify.blocks import rollout_decision

    low = {"short": "evidence", "unsure": ["error_rate_by_tier"], "action": "raise_share", "to_percent": 25.0,
           "users": 150, "requests": 900, "min_users": 20, "min_requests": 50, "percent": 10.0, "held_hours": 6.0,
           "horizon": "2026-01-06T08:00:00+00:00", "projected_users": 150, "projected_requests": 900}
    decision = {"decision": "raise", "candidate": "cand", "from_percent": 10.0, "to_percent": 25.0,
                "reason": "slow evidence", "evidence": {"low_traffic": low}}
    fields = json.dumps(rollout_decision(decision).blocks)
    assert "Slow evidence" in fields and "error rate by tier" in fields and "6 hours at 10%" in fields
    assert "Needed" not in fields  # the minimum was met: that is not what holds it
    asked = rollout_decision(decision | {"decision": "hold", "evidence": {"low_traffic": low | {"action": "ask_a_person"}}})
    assert asked.kind == "alert" and "needs a person" in json.dumps(asked.blocks)


def test_a_rollout_decision_shows_the_per_user_comparisons_beside_the_per_request_ones():
    """A regression confined to some users shows per user first: Slack must carry what the gate decided on."""
    import numpy as np

    from ragops.notify.blocks import rollout_decision
    from ragops.rollout.gate import GatePolicy, Sample, analyze

    rng = np.random.default_rng(20)

    def sample(first: int, users: int, per_user: int, error_users: int) -> Sample:
        ids = np.repeat(np.arange(first, first + users), per_user)  # user codes, distinct across the variants
        errors = ids < first + error_users  # the first `error_users` users fail every request
        return Sample(ids, errors, np.zeros(len(ids), bool), rng.lognormal(3.2, 0.3, len(ids)))

    analysis = analyze(sample(0, 400, 5, 4), sample(400, 40, 5, 4), {"run_id": 1, "regressed": False}, GatePolicy())
    fields = json.dumps(rollout_decision({"decision": analysis.verdict, "candidate": "cand", "from_percent": 10.0,
                                          "to_percent": 10.0, "reason": "; ".join(analysis.reasons),
                                          "evidence": analysis.evidence}).blocks)
    per_user = analysis.evidence["metrics"]["error_rate_per_user"]
    assert "Error difference per user" in fields and "Fallback difference per user" in fields
    assert f"({per_user['verdict']})" in fields.split("Error difference per user")[1][:120]


def test_a_rollout_decision_names_the_activity_tier_and_the_typical_latency():
    import numpy as np

    from ragops.notify.blocks import rollout_decision
    from ragops.rollout.gate import GatePolicy, Sample, analyze

    rng = np.random.default_rng(1)

    def users(first: int, n: int, per_user: int, rate: float) -> Sample:
        ids = np.repeat(np.arange(first, first + n), per_user)
        latency = 25 * np.exp(rng.normal(0, 0.4, len(ids)))
        return Sample(ids, rng.random(len(ids)) < rate, np.zeros(len(ids), bool), latency)

    def both(*parts: Sample) -> Sample:
        return Sample(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("users", "errors", "fallbacks",
                                                                                 "latency_ms")))

    # a quarter of the users, one request each, at +6 points of errors on the canary
    stable = both(users(0, 6000, 20, 0.01), users(50_000, 2000, 1, 0.01))
    canary = both(users(100_000, 1500, 20, 0.01), users(150_000, 500, 1, 0.07))
    analysis = analyze(stable, canary, {"run_id": 1, "regressed": False}, GatePolicy())
    message = rollout_decision({"decision": analysis.verdict, "candidate": "cand", "from_percent": 10.0,
                                "to_percent": 0.0, "reason": "; ".join(analysis.reasons),
                                "evidence": analysis.evidence})
    fields = json.dumps(message.blocks)
    assert analysis.verdict == "rollback" and message.kind == "alert"
    assert "Error difference per user, activity tier 1 (requests per user: 1)" in fields
    assert "(worse)" in fields.split("(requests per user: 1)*")[1][:80]
    assert "Typical latency per user" in fields and "limit 1.60x (within)" in fields  # 25 ms: the +15 ms floor
