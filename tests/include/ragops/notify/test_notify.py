"""Notifiers against a local HTTP server that speaks the Slack Web API (through slack_sdk's base_url)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ragops.notify import Outbox, OutboxNotifier, SlackNotifier, build_notifier
from ragops.notify.blocks import alert, refresh_report


class FakeSlack:
    def __init__(self):
        self.posted: list[dict] = []
        self.mode = "ok"  # ok | down | error
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
                if self.path.endswith("chat.postMessage"):
                    payload = json.loads(body or b"{}")
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
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

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
