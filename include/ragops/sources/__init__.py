"""List and read documents through fsspec; the URI scheme decides the filesystem (file, s3, gs, http...)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import fsspec
from fsspec.core import url_to_fs

from ragops.errors import SourceUnavailable

SUPPORTED_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm", ".rst", ".adoc", ".asciidoc")


@dataclass(frozen=True)
class SourceDocument:
    uri: str
    fingerprint: str  # sha256 of the raw bytes
    size_bytes: int
    content: bytes


def fingerprint(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class Source:
    """A folder of documents at a URI, e.g. file:///srv/docs or s3://bucket/prefix."""

    def __init__(self, uri: str, suffixes: tuple[str, ...] = SUPPORTED_SUFFIXES, **storage_options):
        self.uri = uri.rstrip("/")
        self.suffixes = suffixes
        try:
            self.fs, self.root = url_to_fs(self.uri, **storage_options)
        except (ImportError, ValueError) as exc:
            raise SourceUnavailable(f"cannot open source {uri!r}: {exc}") from exc

    def _uri(self, path: str) -> str:
        return self.fs.unstrip_protocol(path)

    def list_paths(self) -> list[str]:
        """Every supported document path under the source, sorted; hidden folders are skipped."""
        try:
            if not self.fs.exists(self.root):
                raise SourceUnavailable(f"source {self.uri} does not exist or cannot be reached")
            found = self.fs.find(self.root, withdirs=False)
        except SourceUnavailable:
            raise
        except (OSError, fsspec.exceptions.FSTimeoutError) as exc:
            raise SourceUnavailable(f"cannot list source {self.uri}: {exc}") from exc
        root = self.root.rstrip("/")
        keep = []
        for path in found:
            rel = path[len(root):].lstrip("/")
            if any(part.startswith((".", "_")) for part in rel.split("/")):
                continue
            if path.lower().endswith(self.suffixes):
                keep.append(path)
        return sorted(keep)

    def read(self, path: str) -> SourceDocument:
        try:
            content = self.fs.cat_file(path)
        except (OSError, fsspec.exceptions.FSTimeoutError) as exc:
            raise SourceUnavailable(f"cannot read {self._uri(path)}: {exc}") from exc
        return SourceDocument(self._uri(path), fingerprint(content), len(content), content)

    def documents(self):
        """Yield every document with its content and fingerprint."""
        for path in self.list_paths():
            yield self.read(path)
