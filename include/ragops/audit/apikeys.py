"""API keys of the HTTP API: issued once by `ragops keys issue`, kept as sha256 hashes in a YAML file.

    keys:
      - name: support-team
        key_sha256: 3b1f...            # sha256 of the key; the key itself is printed once and never stored
        rate_limit: 300/minute         # optional; default RAGOPS_RATE_LIMIT
        created: 2026-11-30T10:00:00+00:00
        revoked: false                 # optional

Keys are 256 random bits, so a plain sha256 is enough at rest; a presented key is compared with every entry in
constant time, so the answer's timing does not tell how much of a guess matched. Hashing, locking and atomic writes
are those of `ragops.audit.hashed`, shared with the MCP tokens of `ragops token`.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import yaml

from ragops.audit.hashed import find_by_secret, hash_token, locked, new_secret, write_private
from ragops.errors import ConfigError

PREFIX = "rgk_"


@dataclass(frozen=True)
class ApiKey:
    name: str
    key_sha256: str
    rate_limit: str | None = None
    created: str = ""
    revoked: bool = False


@dataclass
class ApiKeys:
    keys: list[ApiKey] = field(default_factory=list)
    path: Path | None = None

    def verify(self, presented: str) -> ApiKey | None:
        """The key's entry when `presented` is a valid, unrevoked key; every entry is compared, in constant time."""
        return find_by_secret(presented, [k for k in self.keys if not k.revoked], lambda k: k.key_sha256)

    @classmethod
    def load(cls, path: Path | str | None) -> "ApiKeys":
        if path is None or not Path(path).exists():
            return cls([], Path(path) if path else None)
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read the API keys file {path}: {exc}") from exc
        keys = []
        for i, raw in enumerate(data.get("keys") or []):
            try:
                key = ApiKey(str(raw["name"]), str(raw["key_sha256"]).lower(), raw.get("rate_limit"),
                             str(raw.get("created") or ""), bool(raw.get("revoked", False)))
            except (KeyError, TypeError) as exc:
                raise ConfigError(f"API key #{i + 1} in {path} needs a name and a key_sha256") from exc
            if len(key.key_sha256) != 64:
                raise ConfigError(f"API key {key.name!r} in {path}: key_sha256 must be a sha256 hex digest")
            keys.append(key)
        if len({k.name for k in keys}) != len(keys):
            raise ConfigError(f"API key names must be unique in {path}")
        return cls(keys, Path(path))

    def save(self) -> None:
        if self.path is None:
            raise ConfigError("set RAGOPS_API_KEYS to the API keys file first")
        body = {"keys": [{k: v for k, v in asdict(key).items() if v not in (None, False)} for key in self.keys]}
        write_private(self.path, "# API keys (sha256 hashes only); written by `ragops keys`\n"
                      + yaml.safe_dump(body, sort_keys=False))


def _locked(path: Path | None):
    return locked(Path(path)) if path is not None else nullcontext()


def issue(path: Path | None, name: str, rate_limit: str | None = None) -> tuple[str, ApiKey]:
    """A new key for `name`: the file keeps its hash; the key is returned to be shown once."""
    with _locked(path):
        keys = ApiKeys.load(path)
        if any(k.name == name for k in keys.keys):
            raise ConfigError(f"an API key named {name!r} exists already; revoke it or choose another name")
        if rate_limit:
            from limits import parse

            try:
                parse(rate_limit)
            except ValueError as exc:
                raise ConfigError(f"not a rate limit: {rate_limit!r} (e.g. 300/minute)") from exc
        secret = new_secret(PREFIX)
        entry = ApiKey(name, hash_token(secret), rate_limit, datetime.now(timezone.utc).isoformat(timespec="seconds"))
        keys.keys.append(entry)
        keys.save()
    return secret, entry


def revoke(path: Path | None, name: str) -> ApiKey:
    with _locked(path):
        keys = ApiKeys.load(path)
        for i, key in enumerate(keys.keys):
            if key.name == name:
                keys.keys[i] = ApiKey(key.name, key.key_sha256, key.rate_limit, key.created, True)
                keys.save()
                return keys.keys[i]
    raise ConfigError(f"no API key named {name!r}")
