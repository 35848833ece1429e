"""A JSONL file of messages not (yet) delivered to Slack, safe for several writers on one host."""

from __future__ import annotations

import fcntl
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


class Outbox:
    def __init__(self, path: Path):
        self.path = Path(path)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def append(self, record: dict) -> None:
        with self._locked(), open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=str) + "\n")

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def drain(self, send: Callable[[dict], bool]) -> tuple[int, int]:
        """Offer every waiting record to `send`; keep those it could not deliver. Returns (sent, kept)."""
        with self._locked():
            records = self.read()
            kept = [r for r in records if not send(r)]
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r, default=str) + "\n" for r in kept)
            tmp.replace(self.path)
        return len(records) - len(kept), len(kept)
