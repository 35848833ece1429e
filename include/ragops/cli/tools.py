"""tools: the connected MCP tools' pins (pin, diff, approve) and their contract check."""

from __future__ import annotations

import json

from ragops.cli import actor
from ragops.config import Settings


def _registry(settings):
    from ragops.registry import Registry

    return Registry(settings.registry_url)


def pin(args):
    from ragops.mcp_tools.review import pin_tools

    settings = Settings()
    out = pin_tools(settings, _registry(settings), args.tool, actor())
    human = "\n\n".join(f"{name}\n{json.dumps(d, indent=2, sort_keys=True)}" for name, d in out["definitions"].items())
    human += "".join(f"\npinned {e['tool']} ({e['fingerprint'][:12]})" for e in out["pinned"])
    human += "".join(f"\nunchanged {e['tool']}" for e in out["unchanged"])
    human += "".join(f"\nNOT pinned {e['tool']}: {e['state']}, {e['why']}" for e in out["refused"])
    return out, human, 1 if out["refused"] else 0


def diff(args):
    from ragops.mcp_tools.review import diff_tool

    settings = Settings()
    out = diff_tool(settings, _registry(settings), args.tool, actor(), args.server)
    lines = [f"{out['tool']} @ {out['server_url']}: {out['state']} {out['detail']}".rstrip()] + out["summary"]
    lines += [f"  {d['kind']:8} {d['path']}: {json.dumps(d['was'])} -> {json.dumps(d['now'])}" for d in out["diff"]]
    if out["state"] == "unpinned":  # nothing to compare with: the whole definition is what is reviewed
        lines.append(json.dumps(out["definition"], indent=2, sort_keys=True))
    if out["fingerprint"]:  # what an approval must name, so that it pins this definition and no other
        lines += [f"fingerprint {out['fingerprint']}",
                  f"to approve exactly this: ragops tools approve {out['tool']} --fingerprint {out['fingerprint']}"]
    return out, "\n".join(lines), 0


def approve(args):
    from ragops.mcp_tools.review import approve_tool

    settings = Settings()
    out = approve_tool(settings, _registry(settings), args.tool, actor(), args.fingerprint, args.server)
    human = (f"approved {out['tool']} ({out['fingerprint'][:12]}) as {out['actor']}" if out["approved"]
             else f"{out['tool']}: {out['why']}")
    return out, human, 0


def check(args):
    from ragops.errors import RagopsError
    from ragops.mcp_tools.report import run_tool_contracts

    report = run_tool_contracts(Settings(), notify=not args.no_report)
    payload = report.to_dict()
    human = "\n".join(f"{t.state.tool}: {t.state.state}, contract {t.contract}" + (f", slower: {t.slower}" if t.slower else "")
                      for t in report.tools) or "no connected tools"
    from ragops.mcp_tools.check import fail_on_problems

    try:
        fail_on_problems(report)
    except RagopsError as exc:
        payload["error"] = exc.to_dict()["error"]
        return payload, human + f"\n{exc}", exc.exit_code
    return payload, human, 0


def add_parsers(sub, common) -> None:
    p = sub.add_parser("tools", parents=[common], help="pins and contracts of the connected MCP tools")
    actions = p.add_subparsers(dest="tools_action", required=True)
    a = actions.add_parser("pin", parents=[common], help="show the connected tools' definitions and pin the new ones")
    a.add_argument("tool", nargs="*", help="only these tools (default: every connected tool)")
    a.set_defaults(handler=pin)
    for name, handler, text in (("diff", diff, "show how a tool's live definition differs from its pin"),
                                ("approve", approve, "pin the definition that diff showed under --fingerprint")):
        a = actions.add_parser(name, parents=[common], help=text)
        a.add_argument("tool")
        a.add_argument("--server", help="the server URL, when several connected servers offer the tool")
        a.set_defaults(handler=handler)
    a.add_argument("--fingerprint", help="the fingerprint `ragops tools diff` showed: only that definition is pinned "
                                         "(required; checked by approve itself, so that its refusal is JSON)")
    a = actions.add_parser("check", parents=[common], help="compare every tool with its pin and run its contract probes")
    a.add_argument("--no-report", action="store_true", help="do not post the report to Slack / the outbox")
    a.set_defaults(handler=check)
