"""Object stores and other fsspec filesystems (s3, gs, memory...): stat from the listing, then a bounded read."""

from __future__ import annotations

import posixpath

import fsspec

from ragops.errors import SourceUnavailable
from ragops.sources import Refused, inside, over_limit

_ERRORS = (OSError, fsspec.exceptions.FSTimeoutError, TimeoutError)


class FsspecFiles:
    def __init__(self, fs, root: str, max_bytes: int):
        self.fs = fs
        self.root = root.rstrip("/")
        self.max_bytes = max_bytes
        self._info: dict[str, dict] = {}

    def uri(self, path: str) -> str:
        return self.fs.unstrip_protocol(path)

    def list(self) -> list[str]:
        try:
            if not self.fs.exists(self.root):
                raise SourceUnavailable(f"source {self.uri(self.root)} does not exist or cannot be reached")
            found = self.fs.find(self.root, withdirs=False, detail=True)
        except _ERRORS as exc:
            raise SourceUnavailable(f"cannot list source {self.uri(self.root)}: {exc}") from exc
        self._info = {}
        for path, info in found.items():
            if posixpath.normpath(path) == path.rstrip("/") and inside(path, self.root):
                self._info[path] = info
        return list(self._info)

    def read(self, path: str) -> bytes:
        info = self._info.get(path)
        if info is None:
            try:
                info = self.fs.info(path)
            except FileNotFoundError:
                raise Refused("the file vanished while the source was read") from None
            except _ERRORS as exc:
                raise SourceUnavailable(f"cannot stat {self.uri(path)}: {exc}") from exc
        if info.get("type") != "file":
            raise Refused(f"not a regular file ({info.get('type')})")
        if info.get("size") is not None and info["size"] > self.max_bytes:
            raise over_limit(info["size"], self.max_bytes)
        try:
            with self.fs.open(path, "rb") as f:
                content = f.read(self.max_bytes + 1)
        except FileNotFoundError:
            raise Refused("the file vanished while the source was read") from None
        except _ERRORS as exc:
            raise SourceUnavailable(f"cannot read {self.uri(path)}: {exc}") from exc
        if len(content) > self.max_bytes:
            raise Refused(f"grew past the size limit of {self.max_bytes} bytes while it was read", len(content))
        return content
