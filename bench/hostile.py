"""Hostile-input benchmark; prints one JSON document.

Measures, on this machine:
- parse cost of adversarial inputs per format at 256 KB, 512 KB and 1 MB (CPU seconds of the parsing thread) and
  the ratio 1 MB / 256 KB: about 4 for linear work (16 would be quadratic, 64 cubic);
- chunk cost of the inputs of issue 22 with the packaged tokenizer at the default 128-token chunks in a 256-token
  window: a first heading and a paragraph count doubled together (12 KB to 384 KB; 32,000 heading words at the
  end), and one line without spaces (256 KB to 1 MB). CPU seconds of the process (the tokenizer may use threads of
  its own), chunks, characters out per character in, and the largest chunk; the ratios last / first of one run
  (linear work: the input's ratio, 32 or 4);
- peak RSS (VmHWM, polled) of a `ragops refresh` child process on a small corpus, alone and with a 1.5 GB sparse file and a
  symlink to /dev/zero added (target: within 10%, i.e. memory does not grow with the size of any one file).

    .venv/bin/python bench/hostile.py [--chunking-only]
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


HEADING_STEPS = (1, 2, 4, 8, 16, 32)  # x 1,000 heading words and 25 paragraphs: about 12 KB each


def _long_heading(step: int) -> str:
    paragraphs = (f"Paragraph {i} " + "text " * 30 for i in range(25 * step))
    return "# " + " ".join(["heading"] * 1000 * step) + "\n\n" + "\n\n".join(paragraphs)


def _ratios(rows: list[dict], keys: tuple[str, ...]) -> dict:
    first, last = rows[0], rows[-1]
    return {key: round(last[key] / first[key], 1) if first[key] else "n/a: 0 at the smallest" for key in keys}


def chunk_costs() -> dict:
    from ragops.ingest.chunking import chunk_document
    from ragops.ingest.embedding import Embedder
    from ragops.ingest.parsing import parse

    embedder = Embedder("all-MiniLM-L6-v2")
    embedder.count_tokens(["warm the tokenizer up"])
    out = {}
    for name, texts in (("long heading and paragraphs doubled together", [_long_heading(k) for k in HEADING_STEPS]),
                        ("one line without spaces", ["x" * size for size in SIZES])):
        rows = []
        for text in texts:
            doc = parse(text, "bench.md")
            started = time.process_time()
            chunks = chunk_document(doc, "bench.md", 128, embedder.count_tokens, embedder.max_tokens)
            cpu = time.process_time() - started
            out_chars = sum(len(c.text) for c in chunks)
            rows.append({"input_kb": round(len(text) / 1000, 1), "cpu_s": round(cpu, 3), "chunks": len(chunks),
                         "output_kb": round(out_chars / 1000, 1), "output_per_input": round(out_chars / len(text), 2),
                         "max_chunk_tokens": max(c.n_tokens for c in chunks),
                         "max_chunk_chars": max(len(c.text) for c in chunks)})
        out[name] = {"runs": rows, "ratio_last_to_first": _ratios(rows, ("input_kb", "cpu_s", "chunks", "output_kb"))}
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
    if "--chunking-only" in sys.argv[1:]:
        print(json.dumps({"chunking": chunk_costs()}, indent=2))
        return 0
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
            "chunking": chunk_costs(),
            "refresh_peak_rss": {"corpus": plain, "corpus_plus_1_5GB_sparse_and_dev_zero": hostile,
                                 "ratio": round(hostile["peak_rss_mb"] / plain["peak_rss_mb"], 3)},
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
