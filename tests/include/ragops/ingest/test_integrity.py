"""Reading a collection in full tells a damaged LanceDB collection from a sound one (no model: random vectors)."""

import numpy as np
import pytest

from ragops.index import IndexedChunk
from ragops.index.lance import LanceCatalog
from ragops.ingest.integrity import read_error


def _built(tmp_path, n: int = 40):
    catalog = LanceCatalog(tmp_path / "lance")
    rng = np.random.default_rng(7)
    chunks = [IndexedChunk(f"c{i}", f"file:///docs/{i % 5}.md", f"h{i}", i, "Heading", "Title",
                           f"paragraph {i} about guards, quarantine and refreshes " * 20,
                           rng.normal(size=16).astype(np.float32)) for i in range(n)]
    catalog.open("chunks").rebuild(chunks)
    return catalog


def test_a_sound_collection_and_an_absent_one_read_in_full(tmp_path):
    catalog = _built(tmp_path)
    assert read_error(catalog.open("chunks")) is None
    assert read_error(catalog.open("never_built")) is None  # nothing to read is not damage (doctor reports it as lost)


@pytest.mark.parametrize("damage", ["data file cut in half", "data file gone", "manifests cut short", "FTS index gone"])
def test_damage_is_named(tmp_path, damage):
    import shutil

    catalog = _built(tmp_path)
    folder = tmp_path / "lance" / "chunks.lance"
    data = next((folder / "data").glob("*.lance"))
    if damage == "data file cut in half":
        with open(data, "r+b") as f:
            f.truncate(data.stat().st_size // 2)
    elif damage == "data file gone":
        data.unlink()
    elif damage == "manifests cut short":
        for manifest in (folder / "_versions").glob("*.manifest"):
            manifest.write_bytes(manifest.read_bytes()[:100])
    else:
        shutil.rmtree(folder / "_indices")
    error = read_error(catalog.open("chunks"))
    assert error and ("lance error" in error or "cannot open" in error), error
