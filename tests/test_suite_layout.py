"""The suite's own layout: test modules are imported by basename (rootdir-relative, no packages), so two test files
with one name break collection for the whole run."""

from collections import Counter
from pathlib import Path


def test_every_test_module_has_a_name_of_its_own():
    names = Counter(p.name for p in Path(__file__).parent.rglob("test_*.py"))
    assert [name for name, n in names.items() if n > 1] == []
