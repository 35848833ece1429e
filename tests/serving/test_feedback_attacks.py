"""POST /v1/feedback and what users type, attacked after landing (docs/reliability.md, "Attack round on issue 23"):
hostile bodies, terminal control sequences, and what held."""

import json

import pytest

from support import events, rows
from ragops.registry.models import Feedback

ESCAPES = "\x1b[2J\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\\r\x07\x9b31m\u202egnp.exe\u2066"


def test_control_sequences_never_reach_the_registry(served):
    """A question or comment is printed later by `ragops gaps` and shown on the RAG Ops page and in Slack: terminal
    escapes (clear screen, OSC 8 links, carriage return), C1 controls and bidirectional overrides are dropped before
    storage, whether redaction is on or off. Tabs and newlines of a comment stay."""
    for redact in (True, False):
        post = served(redact=redact)
        rid = post("/v1/ask", {"question": f"how do I refresh{ESCAPES}?"}).json()["request_id"]
        voted = post("/v1/feedback", {"request_id": rid, "rating": "down", "comment": f"line one\n\tline{ESCAPES}"})
        assert voted.status_code == 200
        post.client.app.app.state.events.flush(10)
        [event] = events(post.settings, request_id=rid)
        [vote] = rows(post.settings, Feedback, request_id=rid)
        for stored in (event.question, vote.comment, voted.json()["comment"]):
            assert not any(c in stored for c in "\x1b\r\x07\x9b\u202e\u2066"), repr(stored)
        assert event.question.startswith("how do I refresh") and vote.comment.startswith("line one\n\tline")
