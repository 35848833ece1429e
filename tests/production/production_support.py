"""Helpers for the production-path tests: throw-away PostgreSQL databases, subprocesses in their own process groups
with their output in log files, and waits that poll a condition until a deadline."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, TypeVar

import psutil
import pytest

T = TypeVar("T")
LOG_FILES = pytest.StashKey[list]()  # on a test or module node: the logs to show when one of its tests fails


class WaitTimeout(AssertionError):
    pass


def wait_for(what: str, probe: Callable[[], T], timeout: float, interval: float = 0.5,
              alive: Callable[[], None] | None = None) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` at the deadline.

    `alive` is called on every round and raises when a process the wait depends on has died, so a crash fails at
    once instead of at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        if alive is not None:
            alive()
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {timeout:.0f} s waiting for {what} (last seen: {last!r})")
        time.sleep(interval)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any Airflow or ragops settings (the tests' own URLs aside), plus `extra`."""
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "RAGOPS_", "PROMETHEUS_")) or k.startswith("RAGOPS_TEST_")}
    return keep | extra


class Service:
    """A subprocess in a new session (so its own process group), its stdout and stderr in `log`.

    The leader is never reaped before its group has been signalled, so the group id cannot have been reused by an
    unrelated process when it is signalled: every signal reaches only what this object started."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path, cwd: Path | None = None):
        self.name = name
        self.log = log_dir / f"{name}.log"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.proc.pid

    def exited(self) -> bool:
        """Whether the leader has exited, without reaping it."""
        if self.proc.returncode is not None:
            return True
        return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None

    def check_alive(self) -> None:
        if self.exited():
            raise AssertionError(f"{self.name} (pid {self.pid}) exited early; its log:\n{tail(self.log)}")

    def members(self) -> list[int]:
        """Live (not zombie) processes of this service's process group."""
        found = []
        for p in psutil.process_iter(["pid", "status"]):
            try:
                if p.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(p.info["pid"]) == self.pid:
                    found.append(p.info["pid"])
            except (ProcessLookupError, psutil.Error):
                continue
        return found

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (the service and every child it started)."""
        if self.proc.returncode is None:
            os.killpg(self.pid, sig)

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGTERM to the group, SIGKILL to whatever is left after `grace` seconds, then reap the leader."""
        if self.proc.returncode is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
                deadline = time.monotonic() + grace
                while self.members() and time.monotonic() < deadline:
                    time.sleep(0.2)
                os.killpg(self.pid, signal.SIGKILL)  # stragglers; the unreaped leader keeps the group id ours
            except ProcessLookupError:
                pass
        return self.proc.wait(timeout=30)


def tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def attach_logs(node, paths: list[Path]) -> None:
    """Show these logs (files, or every *.log under a directory) in the report of any test under `node` that fails
    (see conftest.pytest_runtest_makereport)."""
    node.stash.setdefault(LOG_FILES, []).extend(paths)
