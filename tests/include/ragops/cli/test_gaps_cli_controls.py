"""`ragops gaps` prints questions users typed: a report stored before control characters were dropped at storage
must not drive the on-call engineer's terminal (clear the screen, forge a line, hide a link)."""

from ragops.cli.gaps import human


def test_the_human_report_prints_no_control_sequences():
    report = {"period_start": "2026-11-01T00:00", "period_end": "2026-12-01T00:00", "questions": 3, "refused": 3,
              "down_voted": 0, "users": 3, "capped": False, "clusters": [
                  {"rank": 1, "name": "billing\x1b[8m, invoices", "users": 3, "questions": 3, "trend": "new",
                   "previous": 0, "new_page": True, "belongs_in": "docs/a.md",
                   "representatives": [{"question": "where are invoices\x1b[2J\r 2. all fine\x1b]8;;http://x\x07?"}]}]}
    text = human(report)
    assert not any(c in text for c in "\x1b\r\x07")
    assert "where are invoices" in text and text.count("\n") == 2
