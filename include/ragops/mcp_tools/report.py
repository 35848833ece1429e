"""The weekly tool-contract run: check every connected tool, store the results, post one Slack report."""

from __future__ import annotations

from ragops.mcp_tools.check import ToolsReport, check_tools
from ragops.notify import build_notifier
from ragops.notify.blocks import tool_contracts_report
from ragops.registry import Registry


def run_tool_contracts(settings, registry: Registry | None = None, notifier=None, notify: bool = True) -> ToolsReport:
    """The use case the `mcp_tool_contracts` DAG and `ragops tools check` share; failing is the caller's call."""
    report = check_tools(settings, registry)
    if notify:
        (notifier or build_notifier(settings)).send(tool_contracts_report(report.to_dict()))
    return report
