"""What the connected servers list now: one `tools/list` per server, bounded by the tools' timeouts."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio

from ragops.mcp_client import ToolConfig, failure, open_session
from ragops.mcp_tools.definitions import canonical

MAX_PAGES = 20  # a server that paginates forever is a broken server, not a reason to hang


@dataclass
class Listed:
    """One configured tool as its server lists it: every definition listed under its name, or why there is none."""

    definitions: list[dict] = field(default_factory=list)  # more than one is drift: the client picks one, we cannot
    down: str | None = None  # the server could not be listed (refused, timed out, protocol error)

    @property
    def definition(self) -> dict | None:
        return self.definitions[0] if len(self.definitions) == 1 else None

    @property
    def missing(self) -> bool:
        return self.down is None and not self.definitions

    @property
    def duplicated(self) -> bool:
        return len(self.definitions) > 1


async def list_server(url: str, token: str | None, timeout_s: float) -> dict[str, list[dict]]:
    """{tool name: canonical definitions} of every tool the server lists (all pages, never a cached listing); a name
    listed twice keeps both, in the order listed."""
    found: dict[str, list[dict]] = {}
    with anyio.fail_after(timeout_s):
        async with open_session(url, token) as client:
            cursor = None
            for _ in range(MAX_PAGES):
                page = await client.list_tools(cursor=cursor, cache_mode="refresh")
                for tool in page.tools:
                    found.setdefault(tool.name, []).append(canonical(tool))
                cursor = page.next_cursor
                if cursor is None:
                    break
    return found


async def list_definitions(configs: list[ToolConfig]) -> dict[tuple[str, str], Listed]:
    """Each configured tool's live definition; servers are listed concurrently, once each."""
    servers: dict[tuple[str, str | None], list[ToolConfig]] = {}
    for config in configs:
        servers.setdefault((config.connect_url, config.token), []).append(config)
    out: dict[tuple[str, str], Listed] = {}

    async def one(url: str, token: str | None, group: list[ToolConfig]) -> None:
        try:
            listed = await list_server(url, token, max(c.timeout_s for c in group))
        except TimeoutError:
            reason = f"the server did not list its tools within {max(c.timeout_s for c in group):g} s"
            out.update({c.key: Listed(down=reason) for c in group})
            return
        except Exception as exc:  # noqa: BLE001 - refused, TLS, HTTP and protocol errors all mean "down"
            out.update({c.key: Listed(down=failure(exc)) for c in group})
            return
        out.update({c.key: Listed(definitions=listed.get(c.tool, [])) for c in group})

    async with anyio.create_task_group() as tg:
        for (url, token), group in servers.items():
            tg.start_soon(one, url, token, group)
    return out
