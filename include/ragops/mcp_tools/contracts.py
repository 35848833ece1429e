"""Contract probes: a few calls per connected tool, kept in a YAML file beside the permissions file.

    tools:
      - tool: lookup_ticket
        server: http://tickets:8080/mcp/        # optional: which RAGOPS_MCP_TOOLS entry, when names repeat
        probes:
          - name: a known ticket
            arguments: {query: "RHDH-1"}
            expect:
              contains: ["status"]              # phrases the result text must contain
              matches: "RHDH-[0-9]+"            # a regular expression the text must match somewhere
              shape: {type: object, required: [status]}   # JSON Schema of the structured content (or JSON text)
              error: false                      # true for a probe the tool must refuse

Every probe must succeed within the tool's timeout (`timeout_s` in RAGOPS_MCP_TOOLS).
"""

from __future__ import annotations

import json
import re
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from ragops.errors import ConfigError, ToolFailed
from ragops.mcp_client import ToolConfig, invoke, result_is_error, result_text

MAX_TEXT = 65_536  # the tool's reply is untrusted: expectations look at a bounded prefix
EXPECTATIONS = {"contains", "matches", "shape", "error"}


@dataclass(frozen=True)
class Probe:
    name: str
    arguments: dict
    expect: dict


@dataclass
class ProbeResult:
    name: str
    ok: bool
    latency_ms: float
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def contracts_path(settings) -> Path | None:
    """RAGOPS_MCP_TOOL_CONTRACTS, else mcp-tool-contracts.yaml beside the permissions file."""
    if settings.mcp_tool_contracts is not None:
        return Path(settings.mcp_tool_contracts)
    if settings.mcp_permissions is not None:
        return Path(settings.mcp_permissions).with_name("mcp-tool-contracts.yaml")
    return None


def load_contracts(path: Path | None, configs: list[ToolConfig]) -> dict[tuple[str, str], list[Probe]]:
    """{(server, tool): probes}; a missing file means no probes, a malformed one is a ConfigError."""
    if path is None or not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the MCP tool contracts {path}: {exc}") from exc
    out: dict[tuple[str, str], list[Probe]] = {}
    for i, entry in enumerate(data.get("tools") or []):
        where = f"{path}: tools[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("tool"), str):
            raise ConfigError(f"{where} needs a `tool` name")
        server = entry.get("server")  # as configured, or as shown (credentials masked)
        matching = [c for c in configs if c.tool == entry["tool"] and server in (None, c.url, c.connect_url)]
        if not matching:
            raise ConfigError(f"{where}: {entry['tool']!r} is not a connected tool (RAGOPS_MCP_TOOLS)")
        probes = [_probe(p, f"{where}.probes[{j}]") for j, p in enumerate(entry.get("probes") or [])]
        for config in matching:
            out.setdefault(config.key, []).extend(probes)
    return out


def _probe(raw, where: str) -> Probe:
    if not isinstance(raw, dict) or not isinstance(raw.get("arguments", {}), dict):
        raise ConfigError(f"{where} needs `arguments` as a mapping")
    expect = raw.get("expect") or {}
    unknown = set(expect) - EXPECTATIONS
    if unknown:
        raise ConfigError(f"{where}: unknown expectations {sorted(unknown)} (known: {sorted(EXPECTATIONS)})")
    if "matches" in expect:
        try:
            re.compile(expect["matches"])
        except re.error as exc:
            raise ConfigError(f"{where}: `matches` is not a regular expression: {exc}") from exc
    if "shape" in expect:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(expect["shape"])
        except SchemaError as exc:
            raise ConfigError(f"{where}: `shape` is not a JSON Schema: {exc.message}") from exc
    return Probe(str(raw.get("name") or where), dict(raw.get("arguments") or {}), dict(expect))


async def run_probe(config: ToolConfig, probe: Probe) -> ProbeResult:
    started = time.perf_counter()
    try:
        result = await invoke(config, probe.arguments)
    except ToolFailed as exc:
        return ProbeResult(probe.name, False, _ms(started), [exc.reason])
    latency = _ms(started)
    text = result_text(result)[:MAX_TEXT]
    problems = check(probe.expect, text, getattr(result, "structured_content", None), result_is_error(result))
    return ProbeResult(probe.name, not problems, latency, problems)


def check(expect: dict, text: str, structured, is_error: bool) -> list[str]:
    """What a result fails of its expectations; empty when it meets them all."""
    problems = []
    if is_error != bool(expect.get("error", False)):
        problems.append(f"the tool returned an error: {text[:200]}" if is_error else "the tool accepted a call it must refuse")
        return problems
    phrases = expect.get("contains") or []
    for phrase in [phrases] if isinstance(phrases, str) else phrases:
        if str(phrase) not in text:
            problems.append(f"the result does not contain {str(phrase)!r}")
    if "matches" in expect and not re.search(expect["matches"], text):
        problems.append(f"the result does not match /{expect['matches']}/")
    if "shape" in expect:
        problems += _shape_problems(expect["shape"], text, structured)
    return problems


def _shape_problems(schema: dict, text: str, structured) -> list[str]:
    from jsonschema import Draft202012Validator

    value = structured
    if value is None:
        try:
            value = json.loads(text)
        except ValueError:
            return ["the result has no structured content and its text is not JSON"]
    errors = sorted(Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.absolute_path))
    return [f"shape: {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:200]}" for e in errors[:5]]


def median_latency(results: list[ProbeResult]) -> float | None:
    ok = [r.latency_ms for r in results if r.ok]
    return round(statistics.median(ok), 2) if ok else None


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
