"""Caller-supplied values are fitted to their columns before they are stored."""

import pytest

from ragops.registry.bounds import InvalidRecord, bound_text, bounded
from ragops.registry.models import McpAccessLog, RequestEvent


def test_long_values_keep_a_prefix_and_stay_distinct():
    a, b = bound_text("a" * 100 + "1", 64), bound_text("a" * 100 + "2", 64)
    assert len(a) == len(b) == 64 and a != b and a.startswith("a" * 40)
    assert bound_text("short", 64) == "short"


def test_unstorable_characters_are_replaced():
    assert "\x00" not in bound_text("a\x00b", 64)
    bound_text("lone \ud800 surrogate", 64).encode("utf-8")  # encodable: no UnicodeEncodeError


def test_rows_are_fitted_and_validated():
    row = bounded(McpAccessLog, {"client": "c" * 300, "tool": "t" * 300, "decision": "allowed", "status": "ok",
                                 "request_id": 12345678901234567890, "latency_ms": "1.23456"})
    assert len(row["client"]) == 128 and len(row["tool"]) == 128
    assert row["request_id"] == "12345678901234567890" and row["latency_ms"] == 1.235
    with pytest.raises(InvalidRecord, match="status"):
        bounded(RequestEvent, {"request_id": "r", "endpoint": "/v1/ask", "user_hash": "h", "variant": "stable",
                               "latency_ms": 1.0, "status": "bad"})
    with pytest.raises(InvalidRecord, match="needs"):
        bounded(RequestEvent, {"request_id": "r"})
