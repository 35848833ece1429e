"""Notifiers: Slack Web API through slack_sdk, or the outbox when no token is configured."""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Protocol

from ragops.notify.outbox import Outbox

log = logging.getLogger(__name__)


@dataclass
class Message:
    text: str  # the plain-text fallback Slack shows in notifications
    blocks: list[dict] = field(default_factory=list)
    kind: str = "report"  # report | alert
    files: list[str] = field(default_factory=list)  # paths of images to upload with the message
    channel: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())


class Notifier(Protocol):
    def send(self, message: Message) -> bool:
        """Deliver or keep the message; True when it reached Slack (or the outbox is the destination)."""


class OutboxNotifier:
    """The embedded default: messages land in RAGOPS_HOME/outbox.jsonl and in the log."""

    def __init__(self, outbox: Outbox, channel: str):
        self.outbox = outbox
        self.channel = channel

    def send(self, message: Message) -> bool:
        message.channel = message.channel or self.channel
        self.outbox.append(asdict(message) | {"status": "unsent", "reason": "no Slack token configured"})
        log.info("slack (outbox) %s: %s", message.kind, message.text)
        return True


class SlackNotifier:
    """chat.postMessage (and files_upload_v2 for charts); on failure the message waits in the outbox."""

    def __init__(self, token: str, channel: str, outbox: Outbox, base_url: str | None = None, timeout: int = 10):
        from slack_sdk import WebClient

        kwargs = {"base_url": base_url} if base_url else {}
        self.client = WebClient(token=token, timeout=timeout, **kwargs)
        self.channel = channel
        self.outbox = outbox

    def _deliver(self, record: dict) -> bool:
        from slack_sdk.errors import SlackApiError, SlackClientError

        channel = record.get("channel") or self.channel
        try:
            if not record.get("posted"):
                self.client.chat_postMessage(channel=channel, text=record["text"], blocks=record.get("blocks") or None)
                record["posted"] = True  # a retry after a failed upload sends only what is left
            while record.get("files"):
                self.client.files_upload_v2(channel=channel, file=record["files"][0], title=record["text"][:80])
                record["files"] = record["files"][1:]
            return True
        except (SlackApiError, SlackClientError, OSError, ValueError) as exc:  # ValueError: a reply that is not JSON
            log.warning("slack delivery of %s failed, kept in the outbox: %s", record.get("id"), exc)
            return False

    def flush(self) -> tuple[int, int]:
        """Send what earlier failures left in the outbox, oldest first."""
        return self.outbox.drain(self._deliver)

    def send(self, message: Message) -> bool:
        message.channel = message.channel or self.channel
        self.flush()
        record = asdict(message)
        if self._deliver(record):
            return True
        self.outbox.append(record | {"status": "pending"})
        return False


def build_notifier(settings) -> Notifier:
    outbox = Outbox(settings.outbox_path)
    if settings.slack_token is not None and settings.slack_token.get_secret_value().strip():
        return SlackNotifier(settings.slack_token.get_secret_value(), settings.slack_channel, outbox, settings.slack_base_url)
    return OutboxNotifier(outbox, settings.slack_channel)
