"""Hostile-input benchmark; prints one JSON document.

Measures, on this machine:
- parse cost of adversarial inputs per format at 256 KB, 512 KB and 1 MB (CPU seconds of the parsing thread) and
  the ratio 1 MB / 256 KB: about 4 for linear work (16 would be quadratic, 64 cubic);
- peak RSS (VmHWM, polled) of a `ragops refresh` child process on a small corpus, alone and with a 1.5 GB sparse file and a
  symlink to /dev/zero added (target: within 10%, i.e. memory does not grow with the size of any one file).

    .venv/bin/python bench/hostile.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = (256_000, 512_000, 1_000_000)
CASES = {
    "markdown: the cubic ATX heading": (".md", lambda n: "# a" + " " * n + "b"),
    "markdown: heading markers": (".md", lambda n: "#" * n),
    "html: end tags without a name": (".html", lambda n: "</" * (n // 2)),
    "html: unterminated declarations": (".html", lambda n: "<![" * (n // 3)),
    "html: deep nesting": (".html", lambda n: "<div>" * (n // 11) + "x" + "</div>" * (n // 11)),
    "html: many tags and entities": (".html", lambda n: "<p a='>'>x &amp; y</p>" * (n // 23)),
    "rst: adornment lines": (".rst", lambda n: ("=" * 100 + "x\n") * (n // 102)),
    "asciidoc: heading markers": (".adoc", lambda n: ("=" * 50 + "\n") * (n // 51)),
}


def parse_costs() -> dict:
    from ragops.ingest.parsing import parse

    out = {}
    for name, (suffix, make) in CASES.items():
        seconds = []
        for size in SIZES:
            text = make(size)
            started = time.thread_time()
            parse(text, "bench" + suffix)
            seconds.append(round(time.thread_time() - started, 4))
        ratio = round(seconds[-1] / seconds[0], 1) if seconds[0] >= 0.001 else "n/a: under 1 ms at 256 KB"
        out[name] = {"cpu_s": dict(zip((f"{s // 1000}KB" for s in SIZES), seconds)), "ratio_1MB_to_256KB": ratio}
    return out


def _hwm_kb(pid: int) -> int:
    """VmHWM: the child's own peak RSS since exec (ru_maxrss would also count the parent it was forked from)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return 0


def refresh_rss(corpus: Path, home: Path) -> dict:
    env = dict(os.environ, RAGOPS_HOME=str(home), RAGOPS_SOURCE=corpus.as_uri())
    out = home.parent / f"{home.name}.json"
    started, peak = time.monotonic(), 0
    with open(out, "w") as stdout:
        proc = subprocess.Popen([sys.executable, "-m", "ragops", "refresh", "--json"], env=env, stdout=stdout,
                                stderr=subprocess.DEVNULL)
    while proc.poll() is None:
        peak = max(peak, _hwm_kb(proc.pid))
        time.sleep(0.1)
    report = json.loads(out.read_text())
    return {"exit": proc.returncode, "peak_rss_mb": round(peak / 1024, 1), "wall_s": round(time.monotonic() - started, 1),
            "quarantined": report.get("documents", {}).get("quarantined")}


def main() -> int:
    repo = Path(__file__).resolve().parents[1]
    work = Path(tempfile.mkdtemp(prefix="ragops-hostile-"))
    try:
        corpus = work / "corpus"
        shutil.copytree(repo / "docs", corpus)
        plain = refresh_rss(corpus, work / "plain")
        with open(corpus / "huge.md", "wb") as f:
            f.truncate(1_500_000_000)
        (corpus / "zero.md").symlink_to("/dev/zero")
        hostile = refresh_rss(corpus, work / "hostile")
        result = {
            "parse": parse_costs(),
            "refresh_peak_rss": {"corpus": plain, "corpus_plus_1_5GB_sparse_and_dev_zero": hostile,
                                 "ratio": round(hostile["peak_rss_mb"] / plain["peak_rss_mb"], 3)},
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
