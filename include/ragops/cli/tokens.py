"""token: issue, rotate, revoke and list the bearer tokens of MCP clients."""

from __future__ import annotations

from datetime import date

from ragops.config import Settings
from ragops.errors import ConfigError


def _path():
    path = Settings().mcp_permissions
    if path is None:
        raise ConfigError("RAGOPS_MCP_PERMISSIONS is not set, so the MCP server reads no permissions file and a token "
                          "would grant nothing; set it to the file the server uses (make up uses "
                          "$RAGOPS_HOME/mcp-permissions.yaml)")
    return path


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def token(args):
    from ragops.audit.tokens import issue_token, list_clients, revoke_token

    path = _path()
    if args.action == "list":
        clients = list_clients(path)
        human = "\n".join(f"{c['client']}: tools {', '.join(c['tools'])}; collections {', '.join(c['collections'])}"
                          f"{'; expires ' + c['expires'] if c['expires'] else ''}{'; REVOKED' if c['revoked'] else ''}"
                          for c in clients) or f"no MCP clients in {path}"
        return {"clients": clients, "path": str(path)}, human, 0
    if not args.client:
        raise ConfigError(f"`ragops token {args.action}` needs the client name")
    if args.action == "revoke":
        result = revoke_token(path, args.client)
        return result, f"revoked {args.client}: its token is refused from the next MCP request on", 0
    try:
        expires = date.fromisoformat(args.expires) if args.expires else None
    except ValueError as exc:
        raise ConfigError(f"--expires {args.expires!r} is not a date like 2027-01-31") from exc
    issued = issue_token(path, args.client, _names(args.tools), _names(args.collections) or None, expires,
                         rotate=args.action == "rotate")
    human = (f"MCP token for {issued.client} (shown once; only its sha256 is kept in {issued.path}):\n\n"
             f"    {issued.token}\n\nSend it as `Authorization: Bearer <token>` to the MCP server at /mcp. "
             f"Tools: {', '.join(issued.tools)}; collections: {', '.join(issued.collections)}"
             f"{'; expires ' + issued.expires if issued.expires else ''}.")
    return issued.to_dict(), human, 0


def add_parsers(sub, common) -> None:
    p = sub.add_parser("token", parents=[common], help="issue, rotate, revoke or list MCP client tokens")
    p.add_argument("action", choices=["issue", "rotate", "revoke", "list"])
    p.add_argument("client", nargs="?", help="the MCP client's name, e.g. support-bot")
    p.add_argument("--tools", default="search_knowledge_base,get_document",
                   help='comma-separated tools to grant, "*" for all (default: search_knowledge_base,get_document)')
    p.add_argument("--collections", help='comma-separated collections to grant (default: "*")')
    p.add_argument("--expires", help="expiry date, e.g. 2027-01-31 (default: none)")
    p.set_defaults(handler=token)
