"""
### mcp_tool_contracts

Connected MCP tools can change behind our back. Every week this DAG lists each tool in `RAGOPS_MCP_TOOLS` as its
server declares it, compares the definition (name, description, input and output schema, annotations) with the
pin a person approved (`ragops tools pin` / `ragops tools approve --fingerprint`), and runs contract probes drawn
at random from the tool's set in `mcp-tool-contracts.yaml` beside the permissions file (`RAGOPS_MCP_TOOL_CONTRACTS`),
each after a random pause (`RAGOPS_MCP_TOOL_PROBE_SPACING_S`): each probe must succeed within the tool's timeout and
its result must show the expected phrase or shape. A held tool (changed, listed twice, unapproved, or failing its
contract since its last approval) is reported as held and never called. Latency is compared with the tool's
recent history. Results go to the registry, where the serving app, the monthly permission audit and the RAG Ops
page read them. The DAG never pins a tool: approval is a person's step.

**When**: weekly (Monday 04:30 UTC) and on demand.

**Slack**: one report: tools unchanged, changed (with the diff), failing their contract, down, not approved, listed
twice, held, and slower than usual. Any of those but slower turns the run red.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from _ragops_airflow import cron, default_args, settings, timeout


@dag(
    schedule=cron("30 4 * * 1"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["ragops", "audit"],
    doc_md=__doc__,
)
def mcp_tool_contracts():
    @task(execution_timeout=timeout("tools.check"))
    def check_tools() -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from ragops.mcp_tools.check import ToolsNeedReview, fail_on_problems
        from ragops.mcp_tools.report import run_tool_contracts

        report = run_tool_contracts(settings())  # stored and posted before any verdict
        try:
            fail_on_problems(report)
        except ToolsNeedReview as exc:
            raise AirflowFailException(str(exc)) from exc  # a verdict, not a glitch: retrying changes nothing
        return report.counts()

    check_tools()


mcp_tool_contracts()
