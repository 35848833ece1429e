"""keys: API keys of the HTTP API (the rate-limit identity of a caller). Only their hashes are stored."""

from __future__ import annotations

from ragops.config import Settings
from ragops.errors import ConfigError


def keys(args):
    from ragops.audit.apikeys import ApiKeys, issue, revoke

    path = Settings().api_keys
    if path is None:
        raise ConfigError("set RAGOPS_API_KEYS to the API keys file (the serving app reads it) first")
    if args.action == "issue":
        if not args.name:
            raise ConfigError("`ragops keys issue` needs a NAME")
        secret, entry = issue(path, args.name, args.rate_limit)
        payload = {"name": entry.name, "key": secret, "rate_limit": entry.rate_limit, "file": str(path)}
        return payload, (f"API key for {entry.name} (shown once; only its hash is kept in {path}):\n{secret}\n"
                         "Restart or reload the serving app to accept it."), 0
    if args.action == "revoke":
        if not args.name:
            raise ConfigError("`ragops keys revoke` needs a NAME")
        entry = revoke(path, args.name)
        return {"name": entry.name, "revoked": True}, f"revoked {entry.name}", 0
    listed = [{"name": k.name, "rate_limit": k.rate_limit, "created": k.created, "revoked": k.revoked,
               "key_sha256": k.key_sha256[:12]} for k in ApiKeys.load(path).keys]
    human = "\n".join(f"{k['name']}  {k['rate_limit'] or 'default limit'}  {'revoked' if k['revoked'] else 'active'}"
                      for k in listed) or "no API keys"
    return {"keys": listed}, human, 0


def add_parsers(sub, common) -> None:
    p = sub.add_parser("keys", parents=[common], help="issue, list and revoke API keys of the HTTP API")
    p.add_argument("action", choices=["issue", "list", "revoke"])
    p.add_argument("name", nargs="?", help="who the key is for (issue, revoke)")
    p.add_argument("--rate-limit", help="this key's limit, e.g. 300/minute (default RAGOPS_RATE_LIMIT)")
    p.set_defaults(handler=keys)
