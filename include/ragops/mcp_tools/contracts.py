"""Contract probes: a set of calls per connected tool, kept in a YAML file beside the permissions file.

    tools:
      - tool: lookup_ticket
        server: http://tickets:8080/mcp/        # optional: which RAGOPS_MCP_TOOLS entry, when names repeat
        expect: {shape: {type: object}}         # optional: what every result must meet, probes and real calls alike
                                                # (with a probe's own expectations, both must hold)
        probes:
          - name: a known ticket
            arguments: {query: "RHDH-1"}
            expect:
              contains: ["status"]              # phrases the result text must contain
              matches: "RHDH-[0-9]+"            # a regular expression (or a list) the text must match somewhere
              shape: {type: object, required: [status]}   # JSON Schema of the structured content (or JSON text)
              error: false                      # true for a probe the tool must refuse

Every probe must succeed within the tool's timeout (`timeout_s` in RAGOPS_MCP_TOOLS). A probe is called as the
assistant calls the tool (its configured `arguments` under the probe's), and each check draws a few probes from the
set at random, spaced by random pauses, so that a server cannot tell a probe from a real call by its arguments or
its timing. The tool-level `expect` is also what sampled real calls are held to (`mcp_tools.sampling`).
"""

from __future__ import annotations

import json
import random
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


@dataclass(frozen=True)
class Contract:
    """A tool's probe set, and what every one of its results must meet (each probe's `expect` includes it)."""

    probes: tuple[Probe, ...] = ()
    expect: dict = field(default_factory=dict)


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


def load_contracts(path: Path | None, configs: list[ToolConfig]) -> dict[tuple[str, str], Contract]:
    """{(server, tool): contract}; a missing file means no contracts, a malformed one is a ConfigError."""
    if path is None or not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the MCP tool contracts {path}: {exc}") from exc
    out: dict[tuple[str, str], Contract] = {}
    for i, entry in enumerate(data.get("tools") or []):
        where = f"{path}: tools[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("tool"), str):
            raise ConfigError(f"{where} needs a `tool` name")
        server = entry.get("server")  # as configured, or as shown (credentials masked)
        matching = [c for c in configs if c.tool == entry["tool"] and server in (None, c.url, c.connect_url)]
        if not matching:
            raise ConfigError(f"{where}: {entry['tool']!r} is not a connected tool (RAGOPS_MCP_TOOLS)")
        expect = _expect(entry.get("expect") or {}, where)
        probes = tuple(_probe(p, f"{where}.probes[{j}]", expect) for j, p in enumerate(entry.get("probes") or []))
        for config in matching:
            known = out.get(config.key, Contract())
            out[config.key] = Contract(known.probes + probes, known.expect | expect)
    return out


def _probe(raw, where: str, every: dict) -> Probe:
    if not isinstance(raw, dict) or not isinstance(raw.get("arguments", {}), dict):
        raise ConfigError(f"{where} needs `arguments` as a mapping")
    return Probe(str(raw.get("name") or where), dict(raw.get("arguments") or {}),
                 _both(every, _expect(raw.get("expect") or {}, where)))


def _both(every: dict, own: dict) -> dict:
    """A probe's expectations together with the tool-level ones: both must hold (a probe the tool must refuse is
    held to its own only, as a refusal has none of an answer's shape)."""
    if own.get("error"):
        return own
    out = every | own
    for key in ("contains", "matches"):
        if key in every and key in own:
            out[key] = _listed(every[key]) + _listed(own[key])
    if "shape" in every and "shape" in own:
        out["shape"] = {"allOf": [every["shape"], own["shape"]]}
    return out


def _listed(value) -> list:
    return [value] if isinstance(value, str) else list(value)


def _expect(expect, where: str) -> dict:
    if not isinstance(expect, dict):
        raise ConfigError(f"{where}: `expect` must be a mapping")
    unknown = set(expect) - EXPECTATIONS
    if unknown:
        raise ConfigError(f"{where}: unknown expectations {sorted(unknown)} (known: {sorted(EXPECTATIONS)})")
    if "matches" in expect:
        try:
            [re.compile(pattern) for pattern in _listed(expect["matches"])]
        except (re.error, TypeError) as exc:
            raise ConfigError(f"{where}: `matches` is not a regular expression: {exc}") from exc
    if "shape" in expect:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(expect["shape"])
        except SchemaError as exc:
            raise ConfigError(f"{where}: `shape` is not a JSON Schema: {exc.message}") from exc
    return dict(expect)


def draw(contract: Contract, count: int, rng: random.Random) -> list[Probe]:
    """`count` probes of the set in a random order: which inputs a check sends is not the server's to predict."""
    return rng.sample(list(contract.probes), min(count, len(contract.probes)))


async def run_probe(config: ToolConfig, probe: Probe) -> ProbeResult:
    started = time.perf_counter()
    try:
        result = await invoke(config, dict(config.arguments) | probe.arguments)  # shaped as the assistant's calls
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
    for pattern in _listed(expect.get("matches") or []):
        if not re.search(pattern, text):
            problems.append(f"the result does not match /{pattern}/")
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
