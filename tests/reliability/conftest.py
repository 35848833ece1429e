"""The fault matrix. Each test marked `@pytest.mark.fault(dependency, fault)` records the outcome it observed with
the `matrix` fixture; when the whole matrix ran in one session, it is written to docs/reliability.md
(tests/fault_matrix.py, which gathers the cells from the test reports, so that it works under xdist too).

    @pytest.mark.fault("llm", "slow past its timeout")
    def test_llm_hangs(matrix, ...):
        ...
        matrix.record("503 llm_unavailable within the 15 s deadline; event stored")
"""

from __future__ import annotations

import pytest

from fault_matrix import PROPERTY, Cell

_marked: dict[str, Cell] = {}  # the cells of the tests this process runs


class Matrix:
    def __init__(self, cell: Cell):
        self.cell = cell

    def record(self, observed: str) -> None:
        """What the dependency's fault led to, in words a reader of docs/reliability.md understands."""
        self.cell.observed = observed


@pytest.fixture
def matrix(request) -> Matrix:
    marker = request.node.get_closest_marker("fault")
    if marker is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses `matrix` without @pytest.mark.fault(dependency, fault)")
    return Matrix(_marked[request.node.nodeid])


def pytest_collection_modifyitems(items):
    for item in items:
        marker = item.get_closest_marker("fault")
        if marker is not None:
            _marked[item.nodeid] = Cell(*marker.args)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Each report carries its cell and what the test observed so far."""
    outcome = yield
    cell = _marked.get(item.nodeid)
    if cell is not None:
        outcome.get_result().user_properties.append((PROPERTY, (cell.dependency, cell.fault, cell.observed)))
