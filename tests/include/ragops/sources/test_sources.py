import hashlib

import pytest

from ragops.errors import SourceUnavailable
from ragops.sources import Source


def test_lists_supported_documents_and_skips_hidden(corpus):
    (corpus / ".git").mkdir()
    (corpus / ".git" / "HEAD.md").write_text("# hidden")
    (corpus / "image.png").write_bytes(b"\x89PNG")
    paths = Source(corpus.as_uri()).list_paths()
    names = sorted(p.rsplit("/", 1)[-1] for p in paths)
    assert names == ["audit.adoc", "install.md", "notes.txt", "ops.rst", "page.html", "refresh.md"]


def test_fingerprint_is_content_sha256(corpus):
    docs = {d.uri: d for d in Source(corpus.as_uri()).documents()}
    doc = docs[(corpus / "notes.txt").as_uri()]
    assert doc.fingerprint == hashlib.sha256((corpus / "notes.txt").read_bytes()).hexdigest()
    assert doc.size_bytes == len(doc.content)


def test_missing_source_is_unavailable(tmp_path):
    with pytest.raises(SourceUnavailable, match="does not exist"):
        Source((tmp_path / "nope").as_uri()).list_paths()


def test_unknown_scheme_is_unavailable():
    with pytest.raises(SourceUnavailable):
        Source("nosuchproto://bucket/x")
