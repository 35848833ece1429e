"""A source's change feed: what changed since a cursor, so a refresh plans from the changes, not the whole corpus.

A local folder keeps a journal under RAGOPS_HOME (`feeds/<sha256 of the source URI>/`): a manifest of every
document's (mtime_ns, ctime_ns, size, inode), and an append-only log of puts and deletions. `scan` (the watcher:
`source_watch`, and every refresh before it reads the feed) stats the folder, reads no file, and appends what moved.
ctime cannot be set by a user, so an edit that restores the mtime is still seen; a file modified within `RACY_S`
of the scan is logged again at the next scan, because a write in the same clock tick could be missed (git's racy
files). A rename is a deletion and a put.

A cursor is `<epoch>:<seq>:<offset>`: the journal it belongs to, the last entry read and where the next one starts,
so `changes` seeks and reads only the entries after it. It raises `FeedGap` (never a partial answer) when it cannot
vouch that the entries after the cursor are every change: no cursor, a cursor that does not parse or does not point
at an entry boundary of this journal, a journal started anew (a new epoch: compacted, deleted, another host), or a
journal line that is damaged. The caller then lists the source in full and says so.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

RACY_S = 2.0  # a file modified this close to a scan is logged again at the next one
COMPACT_FACTOR = 4  # a journal with this many times more entries than documents (plus COMPACT_MIN) starts anew
COMPACT_MIN = 100_000


class FeedGap(Exception):
    """The feed cannot say what changed since this cursor; the caller lists the source in full (never raised further)."""


@dataclass
class FeedChanges:
    put: dict[str, str] = field(default_factory=dict)  # uri -> path: added, modified or renamed to
    deleted: set[str] = field(default_factory=set)  # uris gone (removed or renamed from)
    cursor: str = ""  # where the next read starts
    entries: int = 0  # journal entries read
    scanned_at: float | None = None  # the newest scan the entries cover (epoch seconds)


def _stamp(st: os.stat_result) -> list[int]:
    return [st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino]


def _stamp_of(path: str) -> tuple[list[int], int] | None:
    """(stamp, mtime_ns) of a document; a symlink's is its target's and its own, since the source reads the target.
    None when it is gone."""
    try:
        own = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISLNK(own.st_mode):
        return (_stamp(own) if stat.S_ISREG(own.st_mode) else [0, 0, -1, own.st_ino]), own.st_mtime_ns
    try:
        target = os.stat(path)
    except OSError:  # broken, a loop, or out of reach: the link itself is all there is to compare
        return [0, 0, -1, own.st_ino, own.st_ctime_ns], own.st_mtime_ns
    return _stamp(target) + [own.st_ino, own.st_ctime_ns], max(target.st_mtime_ns, own.st_mtime_ns)


class LocalJournal:
    """The change feed of a local folder source (see the module docstring)."""

    def __init__(self, folder: Path | str, source):
        self.folder = Path(folder)
        self.source = source  # ragops.sources.Source: its listing rules decide what a document is
        self.journal = self.folder / "journal.jsonl"
        self.manifest = self.folder / "manifest.json"

    @classmethod
    def for_source(cls, home: Path | str, source) -> "LocalJournal":
        key = hashlib.sha256(source.uri.encode()).hexdigest()[:24]
        return cls(Path(home) / "feeds" / key, source)

    # -- the watcher -------------------------------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def scan(self, now: float | None = None) -> int:
        """Stat every document of the source (no reads) and log what moved since the last scan; returns how many."""
        with self._locked():
            now = time.time() if now is None else now
            known, epoch = self._load_manifest()
            seen: dict[str, list] = {}
            entries = []
            for path, uri in self.source.list_uris():
                found = _stamp_of(path)
                if found is None:
                    continue  # gone between the listing and the stat: absent, as the next scan will confirm
                stamp, mtime_ns = found
                # a racy stamp is not remembered, so the next scan logs the file again
                seen[uri] = [path, None if mtime_ns >= (now - RACY_S) * 1e9 else stamp]
                held = known.get(uri)
                if held is None or held[1] is None or held[1] != stamp:
                    entries.append({"op": "put", "uri": uri, "path": path})
            entries += [{"op": "del", "uri": uri} for uri in sorted(known.keys() - seen.keys())]
            # a journal whose tail a crash cut (or damaged) is started anew: appending to it would bury the damage
            fresh = epoch is None or self._oversized(len(seen)) or self._tail() is None
            if fresh:
                epoch = self._start(now)
            self._append(entries, now)
            if entries or fresh:
                self._write_manifest(seen, epoch)
            return len(entries)

    def _oversized(self, documents: int) -> bool:
        try:
            size = self.journal.stat().st_size
        except FileNotFoundError:
            return True
        return size > 200 * (COMPACT_FACTOR * documents + COMPACT_MIN)  # about 200 bytes an entry

    def _start(self, now: float) -> str:
        """A new journal, with a new epoch: every cursor of the old one is stale (the next refresh lists in full)."""
        epoch = secrets.token_hex(8)
        tmp = self.journal.with_suffix(".tmp")
        tmp.write_text(json.dumps({"epoch": epoch, "started": now}) + "\n")
        os.replace(tmp, self.journal)
        return epoch

    def _append(self, entries: list[dict], now: float) -> None:
        seq = self._tail()[0]
        with open(self.journal, "a", encoding="utf-8") as out:
            for entry in entries:
                seq += 1
                out.write(json.dumps({"seq": seq, **entry}) + "\n")
            seq += 1
            out.write(json.dumps({"seq": seq, "op": "scan", "at": now}) + "\n")  # what the entries before it cover
            out.flush()
            os.fsync(out.fileno())  # the journal before the manifest: a crash between them logs the changes twice

    def _tail(self) -> tuple[int, int] | None:
        """(seq, end offset) of the journal's last entry (0 for the header alone); None if its tail is damaged."""
        try:
            with open(self.journal, "rb") as f:
                header = f.readline()
                end = f.seek(0, os.SEEK_END)
                f.seek(max(len(header), end - 65536))
                tail = f.read()
        except FileNotFoundError:
            return None
        if not tail:
            return (0, len(header)) if header.endswith(b"\n") else None
        if not tail.endswith(b"\n"):
            return None
        try:
            return int(json.loads(tail.splitlines()[-1])["seq"]), end
        except (ValueError, KeyError, TypeError):
            return None

    def _load_manifest(self) -> tuple[dict[str, list], str | None]:
        try:
            held = json.loads(self.manifest.read_text())
            epoch = self._epoch()
        except (FileNotFoundError, ValueError, FeedGap):
            return {}, None
        if held.get("epoch") != epoch:
            return {}, None
        return held["documents"], epoch

    def _write_manifest(self, documents: dict[str, list], epoch: str) -> None:
        tmp = self.manifest.with_suffix(".tmp")
        tmp.write_text(json.dumps({"epoch": epoch, "documents": documents}))
        os.replace(tmp, self.manifest)

    # -- the reader --------------------------------------------------------------------------------------------------
    def _epoch(self) -> str:
        try:
            with open(self.journal, "rb") as f:
                return json.loads(f.readline())["epoch"]
        except FileNotFoundError:
            raise FeedGap(f"the source's change journal {self.journal} does not exist") from None
        except (ValueError, KeyError, TypeError):
            raise FeedGap(f"the change journal {self.journal} has a damaged header") from None

    def head(self) -> str:
        """The cursor after the newest entry: where a full listing made now leaves the next refresh."""
        epoch, tail = self._epoch(), self._tail()
        if tail is None:
            raise FeedGap(f"the change journal {self.journal} ends in a damaged entry")
        return f"{epoch}:{tail[0]}:{tail[1]}"

    def changes(self, since: str | None) -> FeedChanges:
        """Every change after `since`, collapsed per document (the last entry wins); FeedGap if it cannot vouch."""
        epoch = self._epoch()
        if not since:
            raise FeedGap("no cursor from a previous refresh")
        try:
            their_epoch, seq_text, offset_text = since.split(":")
            seq, offset = int(seq_text), int(offset_text)
        except ValueError:
            raise FeedGap(f"the cursor {since[:80]!r} is corrupt") from None
        if their_epoch != epoch:
            raise FeedGap(f"the cursor belongs to journal {their_epoch[:16]!r}, which was replaced by {epoch!r}")
        out = FeedChanges()
        with open(self.journal, "rb") as f:
            header = f.readline()
            f.seek(0, os.SEEK_END)
            if not len(header) <= offset <= f.tell():
                raise FeedGap(f"the cursor {since!r} points outside the journal")
            f.seek(offset - 1)
            if f.read(1) != b"\n":
                raise FeedGap(f"the cursor {since!r} does not point at an entry of the journal")
            expected = seq + 1
            for line in f:
                if not line.endswith(b"\n"):
                    break  # an entry still being written: the next read starts at it
                try:
                    entry = json.loads(line)
                    ok = entry["seq"] == expected
                except (ValueError, KeyError, TypeError):
                    ok = False
                if not ok:
                    raise FeedGap(f"the change journal is damaged at byte {offset} (expected entry {expected})")
                offset += len(line)
                expected += 1
                out.entries += 1
                if entry["op"] == "put":
                    out.put[entry["uri"]] = entry["path"]
                    out.deleted.discard(entry["uri"])
                elif entry["op"] == "del":
                    out.put.pop(entry["uri"], None)
                    out.deleted.add(entry["uri"])
                elif entry["op"] == "scan":
                    out.scanned_at = entry["at"]
        out.cursor = f"{epoch}:{expected - 1}:{offset}"
        return out
