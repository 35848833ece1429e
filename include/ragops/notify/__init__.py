"""Slack notifications: slack_sdk when a token is set, else a JSONL outbox; nothing undelivered is lost."""

from ragops.notify.outbox import Outbox
from ragops.notify.slack import Message, Notifier, OutboxNotifier, SlackNotifier, build_notifier

__all__ = ["Message", "Notifier", "Outbox", "OutboxNotifier", "SlackNotifier", "build_notifier"]
