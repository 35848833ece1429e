"""Secrets kept as hashes: the one mechanism behind `ragops keys` (HTTP API keys) and `ragops token` (MCP tokens).

A secret is 256 random bits, shown once and stored only as its sha256 (plain sha256 is enough for random secrets of
that size). A presented secret is compared with every stored digest in constant time, so timing tells nothing of a
guess. The files holding the digests are edited under a lock file beside them and replaced atomically, readable by
their owner only, so a server never reads half a file and two operators never lose each other's change.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
import secrets
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")


def new_secret(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def find_by_secret(presented: str, entries: Iterable[T], digest: Callable[[T], str]) -> T | None:
    """The (last) entry whose digest is the presented secret's; every entry is compared, in constant time."""
    presented_digest = hash_token(presented).encode()
    found = None
    for entry in entries:
        if hmac.compare_digest(presented_digest, digest(entry).encode()):
            found = entry
    return found


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serializes read-modify-write cycles of `path` through a lock file beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with `text`, mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
