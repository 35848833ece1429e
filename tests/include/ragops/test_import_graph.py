"""The layering rules of ragops, read from the imports themselves: every import in every module, inside functions too.

R1 the core never imports Airflow: nothing under include/ragops imports airflow, serving, dags or the plugin.
R2 no package imports one above it: a ragops package imports only packages of a strictly lower level in LAYERS.
R3 the plugin reads through overview: plugins/*.py import of ragops only ragops.overview, ragops.config, ragops.errors.

Each rule is a function that returns its violations, and each has a test that feeds it a bad import, so a rule that
could never fail would show. A new package gets its level in LAYERS here and in docs/architecture.md.
"""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[3]
CORE = REPO / "include" / "ragops"
PLUGINS = REPO / "plugins"

R1 = "R1 the core never imports Airflow"
R2 = "R2 no package imports one above it"
R3 = "R3 the plugin reads through overview"

# Each package (or top-level module) of ragops and its level: it may import only packages of a strictly lower level.
LAYERS = {
    "__init__": 0, "errors": 0, "config": 0, "logs": 0,
    "registry": 1, "index": 1, "sources": 1, "notify": 1, "mcp_client": 1, "models": 1,
    "releases": 2, "audit": 2, "ingest": 2,
    "monitoring": 3, "training": 3, "feedback": 3,
    "answer": 4, "mcp_tools": 4,
    "evaluation": 5,
    "overview": 6, "rollout": 6,
    "cli": 7,
    "__main__": 8,  # `python -m ragops` runs the CLI
}
# Airflow puts the dags and plugins folders on sys.path, so their files are importable by their bare names.
OUTSIDE = {"airflow", "serving", "dags", "plugins"} | {p.stem for p in [*PLUGINS.glob("*.py"), *REPO.glob("dags/*.py")]}
PLUGIN_READS = {"ragops.overview", "ragops.config", "ragops.errors"}
# (file, module) imports that R2 and the cycle test let pass. Migration 0006 links the rows already in the access log
# with the audit chain's own digest, so that `ragops audit verify` accepts them; Alembic runs it as a script, inside
# Registry.migrate, and no ragops module imports it.
EXEMPT = {("include/ragops/registry/migrations/versions/0006_trust_records.py", "ragops.audit.chain")}


def imports(path: Path, package: list[str]) -> Iterator[tuple[int, str]]:
    """(line, module) for each import in the file; `package` (["ragops", "answer"]) resolves relative ones."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1] if node.level else [])
            module = ".".join(part for part in (base, node.module) if part)
            if module == "ragops":  # `from ragops import answer` imports the package ragops.answer
                yield from ((node.lineno, f"ragops.{alias.name}") for alias in node.names)
            else:
                yield node.lineno, module


def core_files(root: Path) -> Iterator[tuple[Path, str, str, list[str]]]:
    """(file, its name as the rules print it, its ragops package, the package its relative imports start from)."""
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        yield path, f"include/ragops/{rel.as_posix()}", rel.parts[0].removesuffix(".py"), ["ragops", *rel.parts[:-1]]


def core_imports(root: Path) -> Iterator[tuple[str, str, int, str]]:
    """(file, its package, line, module) for each import in the core."""
    for path, shown, owner, package in core_files(root):
        yield from ((shown, owner, line, module) for line, module in imports(path, package))


def package_imports(root: Path) -> Iterator[tuple[str, str, int, str, str]]:
    """(file, its package, line, module, the other ragops package) for each import of one ragops package by another."""
    for shown, owner, line, module in core_imports(root):
        parts = module.split(".")
        if parts[0] == "ragops" and len(parts) > 1 and parts[1] != owner and (shown, module) not in EXEMPT:
            yield shown, owner, line, module, parts[1]


def core_never_imports_airflow(root: Path = CORE) -> list[str]:
    return [f"{R1}: {shown}:{line} imports {module}"
            for shown, _, line, module in core_imports(root) if module.split(".")[0] in OUTSIDE]


def no_package_imports_one_above(root: Path = CORE, layers: dict[str, int] = LAYERS) -> list[str]:
    first_file = {}
    for _, shown, owner, _ in core_files(root):
        first_file.setdefault(owner, shown)
    found = [f"{R2}: {shown} is in the package {owner!r}, which has no level: add it to LAYERS in "
             f"tests/include/ragops/test_import_graph.py and to the layers in docs/architecture.md"
             for owner, shown in first_file.items() if owner not in layers]
    return found + [f"{R2}: {shown}:{line} imports {module} ({owner} is level {layers[owner]}, {target} is level "
                    f"{layers[target]}; a package imports only lower levels)"
                    for shown, owner, line, module, target in package_imports(root)
                    if owner in layers and target in layers and layers[target] >= layers[owner]]


def plugin_reads_through_overview(plugins: Path = PLUGINS) -> list[str]:
    return [f"{R3}: {path.relative_to(plugins.parent)}:{line} imports {module}; of ragops the plugin imports only "
            f"{', '.join(sorted(PLUGIN_READS))} (give ragops.overview a function for what the page needs)"
            for path in sorted(plugins.glob("*.py")) for line, module in imports(path, [])
            if module.split(".")[0] == "ragops" and module not in PLUGIN_READS]


def package_graph(root: Path = CORE) -> dict[str, set[str]]:
    """{package: the ragops packages it imports}."""
    graph: dict[str, set[str]] = {owner: set() for _, _, owner, _ in core_files(root)}
    for _, owner, _, _, target in package_imports(root):
        graph[owner].add(target)
    return graph


def test_the_core_never_imports_airflow():
    assert not (found := core_never_imports_airflow()), "\n".join(found)


def test_no_package_imports_one_above_it():
    assert not (found := no_package_imports_one_above()), "\n".join(found)


def test_the_plugin_reads_through_overview():
    assert not (found := plugin_reads_through_overview()), "\n".join(found)


def test_layers_and_exemptions_name_what_exists():
    assert set(LAYERS) == set(package_graph()), "LAYERS and include/ragops disagree on the packages"
    assert EXEMPT <= {(shown, module) for shown, _, _, module in core_imports(CORE)}, "an exempted import is gone"


def test_no_package_cycle():
    try:
        list(TopologicalSorter(package_graph()).static_order())
    except CycleError as exc:
        raise AssertionError(f"import cycle between ragops packages: {' -> '.join(exc.args[1])}") from None


def test_rollout_serves_no_requests():
    # rollout chains ingest (build, switch) and evaluation (compare), but answers no question and opens no index
    assert not package_graph()["rollout"] & {"answer", "index"}


def _core(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "include" / "ragops"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.mark.parametrize("source,module", [
    ("def build():\n    from airflow.sdk import Variable\n", "airflow.sdk"),
    ("import serving.app\n", "serving.app"),
    ("from ragops_ops_page import render\n", "ragops_ops_page"),
])
def test_r1_fails_on_an_import_of_airflow_serving_or_the_plugin(tmp_path, source, module):
    root = _core(tmp_path, {"errors.py": "", "ingest/refresh.py": source})
    line = source.count("\n")
    assert core_never_imports_airflow(root) == [f"{R1}: include/ragops/ingest/refresh.py:{line} imports {module}"]


ANSWER_ABOVE = "monitoring is level 3, answer is level 4"


@pytest.mark.parametrize("source,module,levels", [
    ("from ragops.answer.pipeline import AnswerService\n", "ragops.answer.pipeline", ANSWER_ABOVE),
    ("from ragops import answer\n", "ragops.answer", ANSWER_ABOVE),
    ("from ..answer import pipeline\n", "ragops.answer", ANSWER_ABOVE),
    ("from ragops.audit import permissions\n", "ragops.audit", "monitoring is level 3, audit is level 3"),
])
def test_r2_fails_when_a_package_imports_one_above_it(tmp_path, source, module, levels):
    root = _core(tmp_path, {"monitoring/events.py": source, "answer/__init__.py": "from ragops.monitoring import x\n"})
    layers = LAYERS | {"audit": 3}  # one level: a package may not import its neighbour either
    assert no_package_imports_one_above(root, layers) == [
        f"{R2}: include/ragops/monitoring/events.py:1 imports {module} ({levels}; a package imports only lower levels)"]


def test_r2_fails_for_a_package_missing_from_layers(tmp_path):
    root = _core(tmp_path, {"insights/__init__.py": "from ragops.errors import RagopsError\n"})
    [found] = no_package_imports_one_above(root)
    assert found.startswith(f"{R2}: include/ragops/insights/__init__.py is in the package 'insights', which has no")
    assert "add it to LAYERS" in found and "docs/architecture.md" in found


def test_r3_fails_when_the_plugin_opens_the_registry(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "ragops_ops_app.py").write_text(
        "from ragops.config import Settings\nfrom ragops.errors import StoreUnavailable\n"
        "from ragops.overview import page_summary\nimport airflow\n\n"
        "def build():\n    from ragops.registry import Registry\n")
    [found] = plugin_reads_through_overview(tmp_path / "plugins")
    assert found.startswith(f"{R3}: plugins/ragops_ops_app.py:7 imports ragops.registry; of ragops the plugin imports")
