"""List and read documents through fsspec; the URI scheme decides the filesystem (file, s3, gs, http...).

A source is confined to its root. Only regular files whose real path lies inside the root are read; symlinks that
leave it, hard links (a local file with more than one name), FIFOs, devices, sockets and anything over the size
limit are *refused*: listed with a reason and an empty content, never read. Sizes are checked before reading,
and every read is bounded by the limit, so memory does not grow with the size of any one file.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Iterator, Protocol

from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from ragops.errors import SourceUnavailable

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm", ".rst", ".adoc", ".asciidoc")
DEFAULT_MAX_BYTES = 5_000_000
MAX_URI_CHARS = 1024  # the registry's documents.uri column


@dataclass(frozen=True)
class SourceDocument:
    uri: str
    fingerprint: str  # sha256 of the raw bytes; of the refusal reason when the document was refused
    size_bytes: int
    content: bytes = b""
    refused: str | None = None  # why it was never read (outside the root, not a regular file, too large...)


def fingerprint(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class Refused(Exception):
    """Raised by a backend for one entry it will not read; the reason is shown to operators."""

    def __init__(self, reason: str, size: int = 0):
        super().__init__(reason)
        self.reason = reason
        self.size = size


class Backend(Protocol):
    root: str  # the source root as the backend's paths spell it

    def list(self) -> list[str]:
        """Candidate document paths under the root (not yet filtered by suffix or hidden folders)."""

    def read(self, path: str) -> bytes:
        """At most `max_bytes` of a regular file inside the root; raises Refused otherwise."""

    def uri(self, path: str) -> str: ...


class Source:
    """A folder of documents at a URI, e.g. file:///srv/docs, s3://bucket/prefix or https://host/docs/."""

    def __init__(self, uri: str, *, max_bytes: int = DEFAULT_MAX_BYTES, timeout_s: float = 30.0,
                 suffixes: tuple[str, ...] = SUPPORTED_SUFFIXES, **storage_options):
        self.uri = uri.rstrip("/")
        self.suffixes = suffixes
        self.max_bytes = max_bytes
        if self.uri.startswith(("http://", "https://")):
            from ragops.sources.http import HttpFiles

            self.backend: Backend = HttpFiles(self.uri, max_bytes, timeout_s, **storage_options)
            return
        try:
            fs, root = url_to_fs(self.uri, **storage_options)
        except (ImportError, ValueError) as exc:
            raise SourceUnavailable(f"cannot open source {uri!r}: {exc}") from exc
        if isinstance(fs, LocalFileSystem):
            from ragops.sources.local import LocalFiles

            self.backend = LocalFiles(fs, root, max_bytes)
        else:
            from ragops.sources.remote import FsspecFiles

            self.backend = FsspecFiles(fs, root, max_bytes)

    @classmethod
    def from_settings(cls, settings, uri: str | None = None) -> "Source":
        return cls(uri or settings.source, max_bytes=settings.max_document_bytes, timeout_s=settings.source_timeout_s)

    def feed(self, home):
        """The source's change feed (ragops.sources.feed), or None when it has none: only local folders keep one."""
        from ragops.sources.local import LocalFiles

        if not isinstance(self.backend, LocalFiles):
            return None
        from ragops.sources.feed import LocalJournal

        return LocalJournal.for_source(home, self)

    def list_paths(self) -> list[str]:
        """Every supported document path under the source, sorted; hidden folders and unstorable names skipped."""
        return [path for path, _ in self.list_uris()]

    def list_uris(self) -> list[tuple[str, str]]:
        """`list_paths` with each path's URI, made once (a change feed's scan needs both)."""
        keep = []
        for path in self.backend.list():
            rel = path[len(self.backend.root):].lstrip("/")
            if any(part.startswith((".", "_")) for part in rel.split("/")):
                continue
            if not path.lower().endswith(self.suffixes):
                continue
            uri = self.backend.uri(path)
            try:
                uri.encode("utf-8")
            except UnicodeEncodeError:
                log.warning("skipped a file whose name is not valid UTF-8: %r", uri)
                continue
            if len(uri) > MAX_URI_CHARS:
                log.warning("skipped a file whose URI is longer than %d characters: %s...", MAX_URI_CHARS, uri[:200])
                continue
            keep.append((path, uri))
        return sorted(keep)

    def read(self, path: str) -> SourceDocument:
        uri = self.backend.uri(path)
        try:
            content = self.backend.read(path)
        except Refused as refusal:
            log.warning("refused %s: %s", uri, refusal.reason)
            return SourceDocument(uri, fingerprint(f"refused\0{refusal.reason}".encode()), refusal.size, b"",
                                  refusal.reason)
        return SourceDocument(uri, fingerprint(content), len(content), content)

    def documents(self) -> Iterator[SourceDocument]:
        """Yield every document with its content and fingerprint (refused ones with their reason)."""
        for path in self.list_paths():
            yield self.read(path)


def over_limit(size: int, max_bytes: int) -> Refused:
    return Refused(f"{size} bytes, over the size limit of {max_bytes} bytes", size)


def inside(path: str, root: str) -> bool:
    """Whether a normalised (no `..`, no `.`) '/'-separated path lies strictly under the root."""
    return path.startswith(root.rstrip("/") + "/")
