"""Local folders: walked without following links, read only through checks fsspec's LocalFileSystem cannot make.

A document is read only when its real path is inside the real root and it is a regular file: stat first, then an
open that follows no final symlink and never blocks (a FIFO or a device would), then the opened file is checked
again (type, identity, real path) so a file swapped for a link in between is refused too.

A hard link is a regular file whose other names may lie anywhere on the same filesystem, and nothing short of
walking that filesystem can prove them inside the root; so every regular file with more than one name is refused.
"""

from __future__ import annotations

import errno
import logging
import os
import stat

from ragops.errors import SourceUnavailable
from ragops.sources import Refused, inside, over_limit

log = logging.getLogger(__name__)

_KINDS = ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"),
          (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"))
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "special file")


class LocalFiles:
    def __init__(self, fs, root: str, max_bytes: int):
        self.fs = fs
        self.root = root.rstrip("/") or "/"
        self.max_bytes = max_bytes
        self.real_root = os.path.realpath(self.root)

    def uri(self, path: str) -> str:
        return self.fs.unstrip_protocol(path)

    def list(self) -> list[str]:
        if os.path.isfile(self.root):  # a single-file source
            self.real_root = os.path.dirname(self.real_root)
            return [self.root]
        if not os.path.isdir(self.root):
            raise SourceUnavailable(f"source {self.fs.unstrip_protocol(self.root)} does not exist or cannot be reached")
        found = []

        def unreadable(exc: OSError) -> None:
            log.warning("cannot list %s: %s", exc.filename, exc.strerror)

        # Linked folders are listed as entries, never walked: a link to / cannot pull the host into the corpus.
        for folder, _dirs, files in os.walk(self.root, onerror=unreadable, followlinks=False):
            found.extend(os.path.join(folder, name) for name in files)
        return found

    def read(self, path: str) -> bytes:
        real = os.path.realpath(path)
        if not inside(real, self.real_root):
            raise Refused("a link to a path outside the source root")
        try:
            before = os.stat(real)
        except FileNotFoundError:
            raise Refused("a broken link, or the file vanished while the source was read") from None
        except OSError as exc:
            raise self._refusal(exc) from None
        if not stat.S_ISREG(before.st_mode):
            raise Refused(f"not a regular file ({_kind(before.st_mode)})")
        _refuse_hard_link(before)
        if before.st_size > self.max_bytes:
            raise over_limit(before.st_size, self.max_bytes)
        try:
            fd = os.open(real, _OPEN_FLAGS)
        except OSError as exc:
            raise self._refusal(exc) from None
        try:
            opened = os.fstat(fd)
            if (opened.st_dev, opened.st_ino) != (before.st_dev, before.st_ino) or not stat.S_ISREG(opened.st_mode):
                raise Refused("the file changed while it was checked")
            _refuse_hard_link(opened)  # a link made between the stat and the open
            fd_path = f"/proc/self/fd/{fd}"
            if os.path.exists(fd_path) and not inside(os.readlink(fd_path), self.real_root):
                raise Refused("a link to a path outside the source root")
            if opened.st_size > self.max_bytes:
                raise over_limit(opened.st_size, self.max_bytes)
            content = _read_at_most(fd, self.max_bytes + 1)
        except OSError as exc:
            raise SourceUnavailable(f"cannot read {self.uri(path)}: {exc}") from exc
        finally:
            os.close(fd)
        if len(content) > self.max_bytes:
            raise Refused(f"grew past the size limit of {self.max_bytes} bytes while it was read", len(content))
        return content

    def _refusal(self, exc: OSError) -> Exception:
        if exc.errno in (errno.EACCES, errno.EPERM):
            return Refused("permission denied")
        if exc.errno == errno.ELOOP:
            return Refused("a symlink loop")
        if exc.errno == errno.ENOENT:
            return Refused("a broken link, or the file vanished while the source was read")
        return SourceUnavailable(f"cannot read {exc.filename}: {exc.strerror}")


def _refuse_hard_link(st: os.stat_result) -> None:
    if st.st_nlink > 1:
        raise Refused(f"a hard link ({st.st_nlink} names for one file, which may lie outside the source root)")


def _read_at_most(fd: int, limit: int) -> bytes:
    parts, size = [], 0
    while size < limit:
        part = os.read(fd, min(1 << 20, limit - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)
