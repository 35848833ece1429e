"""The MCP permissions file (YAML): clients with hashed bearer tokens, allowed tools and collections, expiry.

    clients:
      - name: support-bot
        token_sha256: 9f86d0...          # sha256 of the bearer token; the token itself is never stored
        tools: [search_knowledge_base, get_document]   # "*" grants every tool
        collections: [chunks]                          # "*" grants every collection
        expires: 2027-01-31                            # optional
        revoked: false                                 # optional
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import yaml

from ragops.errors import ConfigError


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class ClientGrant:
    name: str
    token_sha256: str
    tools: tuple[str, ...]
    collections: tuple[str, ...] = ("*",)
    expires: datetime | None = None
    revoked: bool = False

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires is not None and (now or datetime.now(timezone.utc)) >= self.expires

    def allows(self, tool: str, collection: str | None = None) -> tuple[bool, str]:
        if self.revoked:
            return False, "client is revoked"
        if self.expired():
            return False, f"token expired {self.expires:%Y-%m-%d}"
        if "*" not in self.tools and tool not in self.tools:
            return False, f"tool {tool!r} is not granted to {self.name}"
        if collection and "*" not in self.collections and collection not in self.collections:
            return False, f"collection {collection!r} is not granted to {self.name}"
        return True, "granted"


@dataclass
class Permissions:
    clients: list[ClientGrant] = field(default_factory=list)
    source: str = ""

    def by_token(self, token: str) -> ClientGrant | None:
        """Every client is compared, in constant time (hmac.compare_digest), so timing tells nothing of a guess."""
        digest = hash_token(token).encode()
        found = None
        for client in self.clients:
            if hmac.compare_digest(digest, client.token_sha256.encode()):
                found = client
        return found

    @classmethod
    def load(cls, path: Path | str | None) -> "Permissions":
        if path is None:
            return cls()
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read MCP permissions {path}: {exc}") from exc
        return cls.parse(data, str(path))

    @classmethod
    def parse(cls, data: dict, source: str = "") -> "Permissions":
        clients = []
        for i, raw in enumerate(data.get("clients") or []):
            try:
                name = str(raw["name"])
                digest = str(raw["token_sha256"]).lower()
                tools = tuple(str(t) for t in raw.get("tools") or [])
            except (KeyError, TypeError) as exc:
                raise ConfigError(f"MCP permissions client #{i + 1} needs name, token_sha256 and tools") from exc
            if len(digest) != 64:
                raise ConfigError(f"MCP permissions client {name!r}: token_sha256 must be a sha256 hex digest")
            clients.append(ClientGrant(name, digest, tools, tuple(str(c) for c in raw.get("collections") or ["*"]),
                                       _moment(raw.get("expires")), bool(raw.get("revoked", False))))
        names = [c.name for c in clients]
        if len(names) != len(set(names)):
            raise ConfigError("MCP permissions: client names must be unique")
        return cls(clients, source)


def _moment(value) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    return datetime.fromisoformat(str(value)).replace(tzinfo=timezone.utc)
