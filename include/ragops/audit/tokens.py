"""MCP tokens: a new token is shown once and only its sha256 is kept, in the permissions file the MCP server reads.

Hashing, locking and atomic writes are those of `ragops.audit.hashed`, shared with the HTTP API keys. Revoking keeps
the client, marked revoked, so the audit can still tell calls from a revoked client from calls by a stranger.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Iterator

import yaml

from ragops.audit.hashed import hash_token, locked, new_secret, write_private
from ragops.audit.permissions import Permissions
from ragops.errors import ConfigError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
GRANT = re.compile(r"\*|[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
HEADER = "# MCP clients and their grants. `ragops token issue|revoke` edit this file; tokens are kept as sha256 only.\n"


@dataclass(frozen=True)
class IssuedToken:
    client: str
    token: str  # shown once, never stored
    tools: list[str]
    collections: list[str]
    expires: str | None
    path: str

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def _check(client: str, tools: list[str], collections: list[str]) -> None:
    if not NAME.fullmatch(client or ""):
        raise ConfigError(f"client name {client!r}: use 1-64 letters, digits, '.', '_' or '-'")
    if not tools:
        raise ConfigError("grant at least one tool (or \"*\" for every tool)")
    bad = [g for g in tools + collections if not GRANT.fullmatch(g)]
    if bad:
        raise ConfigError(f"not a tool or collection name: {', '.join(repr(b) for b in bad)}")


@contextmanager
def _editing(path: Path) -> Iterator[dict]:
    """Lock, read and validate the file, let the caller change the data, then write it back atomically."""
    with locked(path):
        data = {"clients": []}
        if path.exists():
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8")) or {"clients": []}
            except (OSError, yaml.YAMLError) as exc:
                raise ConfigError(f"cannot read MCP permissions {path}: {exc}") from exc
            Permissions.parse(data, str(path))  # refuse to rewrite a file the server would refuse
        data.setdefault("clients", [])
        data["clients"] = data["clients"] or []
        yield data
        Permissions.parse(data, str(path))
        write_private(path, HEADER + yaml.safe_dump(data, sort_keys=False, default_flow_style=None))


def issue_token(path: Path, client: str, tools: list[str], collections: list[str] | None = None,
                expires: date | None = None, *, rotate: bool = False) -> IssuedToken:
    """A new random token for `client`; with `rotate`, a client that exists gets a new token (the old one stops)."""
    collections = collections or ["*"]
    _check(client, tools, collections)
    if expires is not None and expires <= date.today():
        raise ConfigError(f"the expiry {expires} is not in the future")
    token = new_secret()
    entry = {"name": client, "token_sha256": hash_token(token), "tools": tools, "collections": collections}
    if expires is not None:
        entry["expires"] = expires.isoformat()
    with _editing(Path(path)) as data:
        existing = [i for i, c in enumerate(data["clients"]) if c.get("name") == client]
        if existing and not rotate:
            raise ConfigError(f"client {client!r} exists already; rotate its token with --rotate, or revoke it")
        if existing:
            data["clients"][existing[0]] = entry
        else:
            data["clients"].append(entry)
    return IssuedToken(client, token, tools, collections, entry.get("expires"), str(path))


def revoke_token(path: Path, client: str) -> dict:
    with _editing(Path(path)) as data:
        found = [c for c in data["clients"] if c.get("name") == client]
        if not found:
            raise ConfigError(f"no client {client!r} in {path}")
        found[0]["revoked"] = True
        found[0].setdefault("revoked_at", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return {"client": client, "revoked": True, "path": str(path)}


def list_clients(path: Path) -> list[dict]:
    permissions = Permissions.load(path) if Path(path).exists() else Permissions()
    return [{"client": c.name, "tools": list(c.tools), "collections": list(c.collections),
             "expires": c.expires.date().isoformat() if c.expires else None, "revoked": c.revoked,
             "token": c.token_sha256[:12] + "…"} for c in permissions.clients]
