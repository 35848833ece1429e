"""The MCP permissions file (YAML): clients with hashed bearer tokens, allowed tools and collections, expiry.

    clients:
      - name: support-bot
        token_sha256: 9f86d0...          # sha256 of the bearer token; the token itself is never stored
        tools: [search_knowledge_base, get_document]   # "*" grants every tool
        collections: [chunks]                          # "*" grants every collection
        expires: 2027-01-31                            # optional
        revoked: false                                 # optional
        revoked_at: 2026-11-20T09:30:00+00:00          # set by `ragops token revoke`; the audit's cut-off
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import yaml

from ragops.audit.hashed import find_by_secret, hash_token
from ragops.errors import ConfigError

__all__ = ["ClientGrant", "Permissions", "WatchedPermissions", "hash_token"]


@dataclass(frozen=True)
class ClientGrant:
    name: str
    token_sha256: str
    tools: tuple[str, ...]
    collections: tuple[str, ...] = ("*",)
    expires: datetime | None = None
    revoked: bool = False
    revoked_at: datetime | None = None

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires is not None and (now or datetime.now(timezone.utc)) >= self.expires

    def allows(self, tool: str, collection: str | None = None) -> tuple[bool, str]:
        """`None` means the tool reads no collection; any string, even "", is a name the grant must list."""
        if self.revoked:
            return False, "client is revoked"
        if self.expired():
            return False, f"token expired {self.expires:%Y-%m-%d}"
        if "*" not in self.tools and tool not in self.tools:
            return False, f"tool {tool!r} is not granted to {self.name}"
        if collection is not None and "*" not in self.collections and collection not in self.collections:
            return False, f"collection {collection!r} is not granted to {self.name}"
        return True, "granted"


@dataclass
class Permissions:
    clients: list[ClientGrant] = field(default_factory=list)
    source: str = ""

    def by_token(self, token: str) -> ClientGrant | None:
        """Every client is compared, in constant time, so timing tells nothing of a guess."""
        return find_by_secret(token, self.clients, lambda c: c.token_sha256)

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
                                       _moment(raw.get("expires")), bool(raw.get("revoked", False)),
                                       _moment(raw.get("revoked_at"))))
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


class WatchedPermissions:
    """The permissions file as the MCP server reads it: re-read whenever it changes, so a token issued or revoked
    with `ragops token` counts from the next request, without a restart. A file that turns unreadable or invalid
    keeps the last good grants in force (and says so in the log); it never opens access."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._stamp: tuple | None = None
        self._current = Permissions.load(self.path)  # a bad file at start-up is an error, as before
        self._stamp = self._stat()

    def _stat(self) -> tuple | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def current(self) -> Permissions:
        stamp = self._stat()
        if stamp != self._stamp:
            try:
                self._current = Permissions.load(self.path)
            except ConfigError as exc:
                logging.getLogger(__name__).error("keeping the previous MCP grants: %s", exc)
            self._stamp = stamp
        return self._current

    @property
    def clients(self) -> list[ClientGrant]:
        return self.current().clients

    @property
    def source(self) -> str:
        return str(self.path)

    def by_token(self, token: str) -> ClientGrant | None:
        return self.current().by_token(token)
