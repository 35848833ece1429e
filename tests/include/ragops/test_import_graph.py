"""The package graph of include/ragops has no cycle, and the layers point one way (rollout is no hub)."""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3] / "include" / "ragops"


def package_graph() -> dict[str, set[str]]:
    """{package: packages it imports}, counting imports anywhere in a module (inside functions too)."""
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        rel = path.relative_to(ROOT).parts
        package = rel[0].removesuffix(".py")
        targets = graph.setdefault(package, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            for name in names:
                parts = name.split(".")
                if parts[0] == "ragops" and len(parts) > 1 and parts[1] != package:
                    targets.add(parts[1])
                if parts[0] in ("airflow", "serving", "dags"):
                    targets.add(f"<{parts[0]}>")
    return graph


def test_no_package_cycle():
    graph = package_graph()
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"import cycle between ragops packages: {' -> '.join(exc.args[1])}") from None
    assert {"rollout", "answer", "evaluation", "ingest", "releases"} <= set(order)


def test_layers_point_one_way():
    graph = package_graph()
    assert not any(t.startswith("<") for targets in graph.values() for t in targets), "ragops imports airflow/serving/dags"
    for low in ("answer", "evaluation", "ingest", "index", "monitoring", "releases", "registry", "notify", "audit"):
        assert "rollout" not in graph[low], f"{low} imports rollout"
        assert "cli" not in graph[low], f"{low} imports cli"
    for below in ("releases", "registry", "index", "sources"):
        assert not graph[below] & {"answer", "evaluation", "ingest", "monitoring"}, f"{below} reaches up"
    # rollout chains ingest (build, switch) and evaluation (compare) but serves no requests itself
    assert "answer" not in graph["rollout"] and "index" not in graph["rollout"]
