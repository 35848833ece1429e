"""Caller-supplied values bounded before they are stored: a row that fits its columns cannot fail its batch.

A value over its column's length keeps a readable prefix and a digest of the whole, so two long ids stay distinct.
NUL (which PostgreSQL refuses in text) and lone surrogates (which no encoder accepts) are replaced.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, Integer, String

from ragops.errors import RagopsError

DIGEST = 16


class InvalidRecord(RagopsError):
    """A row that cannot be stored whatever its neighbours: a required value is missing or of the wrong kind."""

    code = "invalid_record"


def bound_text(value, limit: int | None) -> str:
    text = value if isinstance(value, str) else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become "?"
    if limit is not None and len(text) > limit:
        digest = hashlib.sha256(text.encode()).hexdigest()[:DIGEST]
        text = text[: max(0, limit - DIGEST - 1)] + "~" + digest
    return text


def _coercions(model) -> dict[str, tuple]:
    rules = {}
    for column in model.__table__.columns:
        if column.primary_key and column.autoincrement is not False and isinstance(column.type, Integer):
            continue
        required = not column.nullable and column.default is None and column.server_default is None
        rules[column.key] = (column.type, required)
    return rules


_RULES: dict[type, dict[str, tuple]] = {}


def bounded(model, row: dict) -> dict:
    """`row` with every value fitted to `model`'s column; InvalidRecord when a required value is missing or malformed."""
    rules = _RULES.get(model) or _RULES.setdefault(model, _coercions(model))
    out = {}
    for name, value in row.items():
        rule = rules.get(name)
        if rule is None:
            raise InvalidRecord(f"{model.__tablename__} has no column {name!r}")
        kind, required = rule
        if value is None:
            if required:
                raise InvalidRecord(f"{model.__tablename__}.{name} is required")
            out[name] = None
            continue
        try:
            if isinstance(kind, String):
                out[name] = bound_text(value, kind.length)
            elif isinstance(kind, Boolean):
                out[name] = bool(value)
            elif isinstance(kind, Integer):
                out[name] = int(value)
            elif isinstance(kind, Float):
                out[name] = round(float(value), 3)
            elif isinstance(kind, DateTime) and not isinstance(value, datetime):
                raise TypeError(f"a datetime, not {type(value).__name__}")
            else:
                out[name] = value
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidRecord(f"{model.__tablename__}.{name}: {exc}") from None
    missing = [name for name, (_, required) in rules.items() if required and name not in out]
    if missing:
        raise InvalidRecord(f"{model.__tablename__} needs {', '.join(missing)}")
    return out
