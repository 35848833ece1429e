"""Moments as the summary shows them: aware UTC datetimes and ISO 8601 strings."""

from __future__ import annotations

from datetime import datetime, timezone


def utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes that were written as UTC."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def iso(moment: datetime | None) -> str | None:
    return utc(moment).isoformat() if moment is not None else None
