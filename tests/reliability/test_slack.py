"""Fault matrix, Slack (a fake Slack Web API): down, hanging, HTTP 500, rate limited, ok=false, malformed.
Outcome: the message waits in the outbox, nothing is lost, and the next send delivers it first, in order."""

import pytest

from faults import FakeSlack


@pytest.fixture
def slack():
    fake = FakeSlack()
    yield fake
    fake.close()


def _notifier(settings, base_url):
    from ragops.notify import Outbox, SlackNotifier

    return SlackNotifier("xoxb-test", "#ragops", Outbox(settings.outbox_path), base_url=base_url, timeout=1)


def _fault_then_recover(settings, slack, mode):
    from ragops.notify import Message

    slack.mode = mode
    notifier = _notifier(settings, slack.base_url)
    assert notifier.send(Message("first report")) is False and notifier.send(Message("second report")) is False
    kept = [r["text"] for r in notifier.outbox.read()]
    assert kept == ["first report", "second report"] and slack.posted == []
    slack.mode = "ok"
    assert notifier.send(Message("third report")) is True
    assert slack.posted == ["first report", "second report", "third report"] and notifier.outbox.read() == []


@pytest.mark.fault("Slack", "down (connection refused)")
def test_slack_down(settings, matrix):
    from ragops.notify import Message
    from support import free_port

    notifier = _notifier(settings, f"http://127.0.0.1:{free_port()}/api/")
    assert notifier.send(Message("report while Slack is down")) is False
    assert [r["text"] for r in notifier.outbox.read()] == ["report while Slack is down"]
    slack = FakeSlack()
    try:
        notifier.client.base_url = slack.base_url
        assert notifier.send(Message("next report")) is True
        assert slack.posted == ["report while Slack is down", "next report"] and notifier.outbox.read() == []
    finally:
        slack.close()
    matrix.record("kept in the outbox; delivered first, in order, by the next send once Slack answers; none lost")


@pytest.mark.fault("Slack", "slow past its timeout")
def test_slack_hangs(settings, slack, matrix):
    _fault_then_recover(settings, slack, "hang")
    matrix.record("send gives up at the 1 s client timeout; messages kept in the outbox and delivered in order later")


@pytest.mark.fault("Slack", "error status (HTTP 500)")
def test_slack_500(settings, slack, matrix):
    _fault_then_recover(settings, slack, "error")
    matrix.record("kept in the outbox; delivered in order on recovery")


@pytest.mark.fault("Slack", "error status (429 rate limited)")
def test_slack_rate_limited(settings, slack, matrix):
    _fault_then_recover(settings, slack, "ratelimited")
    matrix.record("kept in the outbox; delivered in order on recovery")


@pytest.mark.fault("Slack", "error status (ok: false)")
def test_slack_not_ok(settings, slack, matrix):
    _fault_then_recover(settings, slack, "not_ok")
    matrix.record("kept in the outbox; delivered in order on recovery")


@pytest.mark.fault("Slack", "malformed reply")
def test_slack_malformed(settings, slack, matrix):
    _fault_then_recover(settings, slack, "malformed")
    matrix.record("kept in the outbox (a non-JSON reply is a failed delivery); delivered in order on recovery")
