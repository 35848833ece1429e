"""What the HTTP benchmarks share: a `ragops serve` they start and stop themselves, a free port, percentiles.

The server runs in its own process group on a free loopback port with a clean environment (the caller's RAGOPS_*
variables are dropped, so a benchmark measures only the settings it names) and is stopped by that group only.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from _rhdh import RHDH

# For benchmarks that measure the service, not the limiter (bench/load.py measures the limiter).
UNLIMITED = {"RAGOPS_RATE_LIMIT": "100000000/minute", "RAGOPS_RATE_LIMIT_ADDRESS": "100000000/minute",
             "RAGOPS_RATE_LIMIT_GLOBAL": "100000000/minute"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def questions(limit: int, skip: int = 0) -> list[str]:
    """The RHDH dev questions (from the `skip`-th) when the set is there, else three about the bundled docs."""
    dev = RHDH / "dev.jsonl"
    if dev.exists():
        return [json.loads(line)["question"] for line in dev.read_text().splitlines()][skip : skip + limit]
    return ["How does the refresh guard work?", "Where do Slack reports go?", "What does make up start?"] * (limit // 3 + 1)


class Server:
    """`ragops serve` on a free loopback port, in its own process group; `env` is all the RAGOPS_* it gets."""

    def __init__(self, home: Path, **env: str):
        self.port = free_port()
        environment = {k: v for k, v in os.environ.items() if not k.startswith("RAGOPS_")} | {
            "RAGOPS_HOME": str(home)} | env
        self.proc = subprocess.Popen([sys.executable, "-m", "ragops", "serve", "--port", str(self.port)],
                                     env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait(self, timeout_s: float = 180) -> None:
        import httpx

        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with code {self.proc.returncode} before it was ready")
            try:
                if httpx.get(self.url + "/readyz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError("the server did not become ready")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
        return 0.0

    def stop(self) -> None:
        """SIGTERM to the server's group (a clean shutdown writes every queued event), SIGKILL after 60 s."""
        for sig, grace in ((signal.SIGTERM, 60), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)  # the group, even when its leader has gone
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> "Server":
        try:
            self.wait()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
