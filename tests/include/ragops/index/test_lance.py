"""LanceDB-only behaviour beside the conformance suite: setting a damaged collection aside."""

from pathlib import Path

import numpy as np
import pytest

from ragops.errors import StoreUnavailable
from ragops.index import IndexedChunk
from ragops.index.lance import LanceCatalog


def test_set_aside_moves_the_whole_collection_and_refuses_what_is_not_there(tmp_path):
    catalog = LanceCatalog(tmp_path / "lance")
    rng = np.random.default_rng(3)
    catalog.open("chunks").rebuild([IndexedChunk(f"c{i}", "file:///docs/a.md", f"h{i}", i, "", "", f"text {i}",
                                                 rng.normal(size=8).astype(np.float32)) for i in range(5)])
    folder = tmp_path / "lance" / "chunks.lance"
    files = sorted(p.relative_to(folder) for p in folder.rglob("*"))

    moved = Path(catalog.set_aside("chunks"))
    assert moved.parent == tmp_path / "quarantine" / "lance" and moved.name.startswith("chunks-")
    assert moved.suffix == ".lance" and sorted(p.relative_to(moved) for p in moved.rglob("*")) == files
    assert catalog.collections() == [] and not folder.exists()
    with pytest.raises(StoreUnavailable, match="no directory"):
        catalog.set_aside("chunks")
