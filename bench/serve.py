"""Serving benchmark; prints one JSON document.

In one run: the in-process floor of a search (query embedding + index search), then `/v1/search` and `/v1/ask`
over loopback HTTP against `ragops serve` at concurrency 1, 8 and 32 (p50/p99, throughput, errors), the time to
first token of streamed answers (`/v1/chat/completions` and `/v1/ask` with `stream: true`) at concurrency 1 and 8,
and the cost of the rate limiter and of request-event writing, measured both in-process and over HTTP with each
switched off. `--ttft` measures only the streamed answers.

    .venv/bin/python bench/serve.py [--docs $RAGOPS_EVAL_RHDH/docs] [--requests 200]

With `--compare`, one run measures `/v1/search` at concurrency 1 and 8 against servers that differ only in the
query-embedding settings: "before" (float32, each query encoded alone, no query cache: the code's behaviour before
issue 12), "batching" (the default precision and micro-batching, cache off) and "after" (the defaults: batching
and the LRU of hot queries). The load cycles over 100 dev questions, so "after" serves repeats from its cache.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from _rhdh import RHDH  # noqa: E402
from _server import UNLIMITED, Server, pct, questions  # noqa: E402  (shared with bench/load.py)


async def drive(url: str, qs: list[str], concurrency: int, total: int, one) -> float:
    """`total` requests from `concurrency` workers cycling over `qs`; `one(client, question, worker)` sends one.
    Returns the wall time in seconds."""
    import httpx

    queue: asyncio.Queue = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(qs[i % len(qs)])
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def worker(n: int) -> None:
            while not queue.empty():
                await one(client, queue.get_nowait(), n)

        started = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        return time.perf_counter() - started


async def load(url: str, path: str, qs: list[str], concurrency: int, total: int) -> dict:
    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0

    async def one(client, question: str, n: int) -> None:
        nonlocal errors
        started = time.perf_counter()
        try:
            reply = await client.post(path, json={"question": question, "user_id": f"bench-{n}"})
            statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
            if reply.status_code >= 500:
                errors += 1
        except httpx.HTTPError:
            errors += 1
        latencies.append((time.perf_counter() - started) * 1000)

    wall = await drive(url, qs, concurrency, total, one)
    return {"requests": total, "p50_ms": pct(latencies, 0.5), "p99_ms": pct(latencies, 0.99),
            "throughput_rps": round(total / wall, 1), "errors": errors, "statuses": statuses}


async def first_tokens(url: str, path: str, qs: list[str], concurrency: int, total: int) -> dict:
    """Streamed answers: the time to the first text piece (time to first token) and to the end of the stream."""
    import httpx

    first: list[float] = []
    whole: list[float] = []
    errors = 0

    async def one(client, question: str, n: int) -> None:
        nonlocal errors
        body = ({"model": "ragops", "stream": True, "user": f"bench-{n}",
                 "messages": [{"role": "user", "content": question}]} if path == "/v1/chat/completions"
                else {"question": question, "user_id": f"bench-{n}", "stream": True})
        started, seen = time.perf_counter(), None
        try:
            async with client.stream("POST", path, json=body) as reply:
                async for line in reply.aiter_lines():
                    if seen is None and ('"content": "' in line or '"text": ' in line) and '"content": ""' not in line:
                        seen = time.perf_counter()
        except httpx.HTTPError:
            errors += 1
            return
        if reply.status_code != 200 or seen is None:
            errors += 1
            return
        first.append((seen - started) * 1000)
        whole.append((time.perf_counter() - started) * 1000)

    wall = await drive(url, qs, concurrency, total, one)
    return {"requests": total, "ttft_p50_ms": pct(first, 0.5), "ttft_p99_ms": pct(first, 0.99),
            "total_p50_ms": pct(whole, 0.5), "throughput_rps": round(total / wall, 1), "errors": errors}


def ttft(server_url: str, qs: list[str], requests: int) -> dict:
    """Time to first token of the streamed endpoints at concurrency 1 and 8. Each endpoint asks its own half of the
    questions, so that neither is served from query-cache entries the other left."""
    half = len(qs) // 2
    return {f"{path} stream c={c}": asyncio.run(first_tokens(server_url, path, own, c, requests if c == 1 else requests * 2))
            for path, own in (("/v1/chat/completions", qs[:half]), ("/v1/ask", qs[half:])) for c in (1, 8)}


def in_process(home: Path, qs: list[str]) -> dict:
    from ragops.answer.retrieval import Retriever
    from ragops.config import Settings
    from ragops.monitoring.events import EventWriter
    from ragops.registry import Registry
    from serving.ratelimit import RateLimiter

    settings = Settings(home=home)
    retriever = Retriever(settings)
    retriever.search(qs[0])
    floor = []
    for q in qs:
        started = time.perf_counter()
        retriever.search(q, k=5)
        floor.append((time.perf_counter() - started) * 1000)

    limiter = RateLimiter("100000000/minute", "100000000/minute")

    async def hits() -> list[float]:
        out = []
        for i in range(2000):
            started = time.perf_counter()
            await limiter.hit(f"caller-{i % 50}")
            out.append((time.perf_counter() - started) * 1000)
        return out

    limiter_ms = asyncio.run(hits())
    writer = EventWriter(Registry(settings.registry_url))
    record_ms = []
    for i in range(2000):
        started = time.perf_counter()
        writer.record("request", request_id=str(i), endpoint="bench", user_hash="h", variant="stable", release_id=None,
                      latency_ms=1.0, status=200, fallback=None, chunk_ids=["a", "b"])
        record_ms.append((time.perf_counter() - started) * 1000)
    writer.close()
    return {"search_floor_p50_ms": pct(floor, 0.5), "search_floor_p99_ms": pct(floor, 0.99),
            "rate_limiter_hit_p50_ms": round(statistics.median(limiter_ms), 4),
            "event_record_p50_ms": round(statistics.median(record_ms), 4)}


VARIANTS = {
    "before": {"RAGOPS_EMBEDDING_PRECISION": "float32", "RAGOPS_QUERY_BATCHING": "false", "RAGOPS_QUERY_CACHE_SIZE": "0"},
    "batching": {"RAGOPS_QUERY_CACHE_SIZE": "0"},
    "after": {},
}


def compare(home: Path, qs: list[str], requests: int) -> dict:
    """The same loads against each variant's server, one after the other, in one run."""
    out: dict = {"variants": {}}
    for name, env in VARIANTS.items():
        server = Server(home, **UNLIMITED, RAGOPS_REQUEST_EVENTS="false", **env)
        server.wait()
        try:
            # Warm the model and the document cache with other questions, so the measured ones start cold.
            asyncio.run(load(server.url, "/v1/search", questions(40, skip=100), 4, 40))
            out["variants"][name] = {"env": env} | {
                f"c={c}": asyncio.run(load(server.url, "/v1/search", qs, c, requests if c == 1 else requests * 2))
                for c in (1, 8)}
        finally:
            server.stop()
    before, after = out["variants"]["before"], out["variants"]["after"]
    batching = out["variants"]["batching"]
    out["summary"] = {
        "rps_c8_after_over_before": round(after["c=8"]["throughput_rps"] / before["c=8"]["throughput_rps"], 2),
        "rps_c8_batching_over_before": round(batching["c=8"]["throughput_rps"] / before["c=8"]["throughput_rps"], 2),
        "p50_c1_after_over_before": round(after["c=1"]["p50_ms"] / before["c=1"]["p50_ms"], 3),
        "p50_c1_batching_over_before": round(batching["c=1"]["p50_ms"] / before["c=1"]["p50_ms"], 3),
        "target": "rps at c=8 >= 2x before, p50 at c=1 <= before",
    }
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--compare", action="store_true", help="before/after query embedding, side by side")
    parser.add_argument("--docs", default=str(RHDH / "docs"))
    parser.add_argument("--home", help="reuse an indexed RAGOPS_HOME instead of indexing --docs")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--ttft", action="store_true", help="only the time to first token of streamed answers")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ragops-bench-serve-"))
    try:
        home = Path(args.home) if args.home else work / "home"
        if not args.home:
            from ragops.config import Settings
            from ragops.ingest.refresh import Refresher

            source = Path(args.docs) if Path(args.docs).exists() else REPO / "docs"
            Refresher(Settings(home=home, source=source.as_uri())).run()
        qs = questions(100)
        if args.compare:
            print(json.dumps(compare(home, qs, args.requests), indent=2))
            return 0
        if args.ttft:
            with Server(home, **UNLIMITED) as server:
                asyncio.run(load(server.url, "/v1/search", questions(20, skip=100), 2, 20))  # warm up
                print(json.dumps({"streamed": ttft(server.url, qs, args.requests)}, indent=2))
            return 0
        result = {"in_process": in_process(home, qs), "http": {}, "switches": {}}
        server = Server(home, **UNLIMITED)
        server.wait()
        try:
            for path in ("/v1/search", "/v1/ask"):
                for concurrency in (1, 8, 32):
                    total = args.requests if concurrency == 1 else args.requests * 2
                    result["http"][f"{path} c={concurrency}"] = asyncio.run(load(server.url, path, qs, concurrency, total))
            result["streamed"] = ttft(server.url, qs, args.requests)
            result["switches"]["all on"] = asyncio.run(load(server.url, "/v1/search", qs, 1, args.requests))
        finally:
            server.stop()
        for name, env in (("rate limiter off", {"RAGOPS_RATE_LIMIT_ENABLED": "false"}),
                          ("events off", {"RAGOPS_REQUEST_EVENTS": "false"})):
            server = Server(home, **UNLIMITED, **env)
            server.wait()
            try:
                result["switches"][name] = asyncio.run(load(server.url, "/v1/search", qs, 1, args.requests))
            finally:
                server.stop()
        floor = result["in_process"]["search_floor_p50_ms"]
        c1 = result["http"]["/v1/search c=1"]["p50_ms"]
        on = result["switches"]["all on"]["p50_ms"]
        result["summary"] = {
            "search_http_p50_over_floor": round(c1 / floor, 3), "target": 1.5,
            "errors_at_c32": result["http"]["/v1/search c=32"]["errors"] + result["http"]["/v1/ask c=32"]["errors"],
            "rate_limiter_adds_p50_ms_http": round(on - result["switches"]["rate limiter off"]["p50_ms"], 2),
            "events_add_p50_ms_http": round(on - result["switches"]["events off"]["p50_ms"], 2),
        }
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
