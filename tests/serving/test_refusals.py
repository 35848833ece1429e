"""Aggregated refusal rows: the first of a kind at once, repeats as one counted row per window, kinds bounded."""

from serving.refusals import RefusalLog


class Rows:
    def __init__(self):
        self.rows = []

    def record(self, kind, **row):
        self.rows.append((row["client"], row["reason"]))


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def test_repeats_are_counted_and_written_when_the_window_ends():
    events, clock = Rows(), Clock()
    log = RefusalLog(events, window_s=60, clock=clock)
    for _ in range(200):
        log.record("unknown", "-", "10.0.0.1", "unknown token", "unauthenticated")
    log.record("unknown", "-", "10.0.0.2", "unknown token", "unauthenticated")
    assert events.rows == [("unknown", "unknown token from 10.0.0.1"), ("unknown", "unknown token from 10.0.0.2")]
    clock.now += 59
    log.tick()
    assert len(events.rows) == 2
    clock.now += 1
    log.record("unknown", "-", "10.0.0.1", "unknown token", "unauthenticated")  # the next window's first
    assert events.rows[2][1].startswith("unknown token from 10.0.0.1: 199 more in the 60 s from")
    assert events.rows[3] == ("unknown", "unknown token from 10.0.0.1") and len(events.rows) == 4


def test_past_the_bound_of_kinds_the_rest_share_one_overflow_row():
    events = Rows()
    log = RefusalLog(events, max_kinds=3, clock=Clock())
    for i in range(100):
        log.record("unknown", "-", f"10.0.0.{i}", "unknown token", "unauthenticated")
    assert len(events.rows) == 4 and events.rows[3] == ("*", "other refusals from *")
    log.flush()
    assert events.rows[4][1].startswith("other refusals from *: 96 more")
