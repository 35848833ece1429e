"""A tool's definition as its server lists it: canonical form, fingerprint, and field-level differences."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass
from typing import Any

# What the model reads and what the call must satisfy; a change to any of these is a change of the tool.
FIELDS = ("name", "description", "inputSchema", "outputSchema", "annotations")


def canonical(tool: Any) -> dict:
    """The pinned fields of an MCP `Tool` (or a dict in its wire form), normalised so equal definitions hash equal."""
    data = tool.model_dump(by_alias=True, mode="json", exclude_none=True) if hasattr(tool, "model_dump") else dict(tool)
    return {field: _normalise(data[field]) for field in FIELDS if data.get(field) is not None}


def _normalise(value: Any) -> Any:
    # NFC only: other invisible characters (zero-width spaces...) are part of what the model reads, so they count.
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def fingerprint(definition: dict) -> str:
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Change:
    path: str  # e.g. inputSchema.properties.query
    kind: str  # added|removed|changed
    was: Any = None
    now: Any = None

    def to_dict(self) -> dict:
        return {"path": self.path, "kind": self.kind, "was": self.was, "now": self.now}


def diff(was: dict, now: dict, path: str = "") -> list[Change]:
    """Every leaf that differs between two canonical definitions, with its dotted path."""
    if isinstance(was, dict) and isinstance(now, dict):
        changes: list[Change] = []
        for key in sorted(set(was) | set(now)):
            sub = f"{path}.{key}" if path else key
            if key not in now:
                changes.append(Change(sub, "removed", was[key], None))
            elif key not in was:
                changes.append(Change(sub, "added", None, now[key]))
            else:
                changes.extend(diff(was[key], now[key], sub))
        return changes
    if was != now:
        return [Change(path, "changed", was, now)]
    return []


def summarize(changes: list[Change]) -> list[str]:
    """Readable lines naming what kind of change each difference is (renamed argument, widened schema...)."""
    lines = []
    props_removed = [c.path.rsplit(".", 1)[-1] for c in changes if _is_property(c) and c.kind == "removed"]
    props_added = [c.path.rsplit(".", 1)[-1] for c in changes if _is_property(c) and c.kind == "added"]
    if props_removed and props_added:
        lines.append(f"argument renamed or replaced: {', '.join(props_removed)} -> {', '.join(props_added)}")
    elif props_removed:
        lines.append(f"argument removed: {', '.join(props_removed)}")
    elif props_added:
        lines.append(f"argument added: {', '.join(props_added)}")
    for c in changes:
        if _is_property(c):
            continue
        if c.path == "description":
            lines.append("description changed (the text the model reads)")
        elif c.path.startswith("inputSchema"):
            verb = "widened" if _widens(c) else "changed"
            lines.append(f"input schema {verb} at {c.path}: {_short(c.was)} -> {_short(c.now)}")
        elif c.path == "outputSchema":
            lines.append(f"output schema {c.kind}")
        elif c.path.startswith("outputSchema"):
            lines.append(f"output schema changed at {c.path}: {_short(c.was)} -> {_short(c.now)}")
        elif c.path.startswith("annotations"):
            lines.append(f"annotation {c.path.split('.', 1)[-1]} changed: {_short(c.was)} -> {_short(c.now)}")
        else:
            lines.append(f"{c.path} {c.kind}: {_short(c.was)} -> {_short(c.now)}")
    return list(dict.fromkeys(lines))


def _is_property(change: Change) -> bool:
    parts = change.path.split(".")
    return len(parts) == 3 and parts[0] == "inputSchema" and parts[1] == "properties" and change.kind != "changed"


RESTRICTIONS = {"maxLength": max, "maximum": max, "exclusiveMaximum": max, "maxItems": max, "maxProperties": max,
                "minLength": min, "minimum": min, "exclusiveMinimum": min, "minItems": min, "minProperties": min}


def _widens(change: Change) -> bool:
    """True when the new input schema accepts more than the old one did."""
    leaf = change.path.rsplit(".", 1)[-1]
    if leaf == "additionalProperties":
        return change.was is False and change.now is not False
    if leaf == "required":
        return not set(change.now or []) >= set(change.was or [])
    if leaf == "enum":
        return change.now is None or not set(map(str, change.now)) <= set(map(str, change.was or []))
    if leaf in ("pattern", "format", "const"):
        return change.kind == "removed"
    if leaf in RESTRICTIONS:
        if change.kind == "removed":
            return True
        if change.kind == "changed" and isinstance(change.was, (int, float)) and isinstance(change.now, (int, float)):
            return RESTRICTIONS[leaf](change.was, change.now) == change.now and change.was != change.now
        return False
    if leaf == "type":
        was = {change.was} if isinstance(change.was, str) else set(change.was or [])
        now = {change.now} if isinstance(change.now, str) else set(change.now or [])
        return change.kind == "removed" or not now <= was
    return False


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
