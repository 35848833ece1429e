"""Load benchmark of the trust boundaries; prints one JSON document. Not a timed test.

1. Capacity: open-loop `/v1/ask` at rising rates against `ragops serve` (limits off) until p99 passes 1 s; the
   capacity is the highest rate whose p99 stayed under 1 s with no errors.
2. Flood: a fresh server with the default limits and one issued API key; twice the capacity for --flood-s seconds
   from key-less clients on one address that rotate user_ids, plus one well-behaved caller with its key at 1 req/s.
   Reports status counts (5xx, 429s with Retry-After), the good caller's success rate, the admitted p99, the server's
   RSS (cold, after a 10 s warm-up that is not counted, during and at the end), and request events stored against
   requests answered.
3. Cost flood (issue 22, finding 5): a fresh server with the default limits; 15 clients, each with its own key, send
   random 2,000-character questions back to back for --cost-s seconds (waiting out each 429's Retry-After, as the
   API asks), beside one well-behaved client asking normal questions at 4 req/s. Reports the well-behaved client's
   p50/p99, and the flood's answers, 429 share and Retry-After values. `--only cost` runs this scenario alone;
   `--cost-gate-off` runs it without admission by cost, for comparison.

The server runs in its own process group on a free loopback port; this process is the load generator.

    .venv/bin/python bench/load.py [--home H] [--flood-s 60] [--step-s 8] [--cost-s 30] [--only cost]
                                   [--cost-gate-off]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import string
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from _rhdh import RHDH  # noqa: E402
from _server import Server, pct, questions  # noqa: E402  (shared with bench/serve.py)


async def open_loop(url: str, rate: float, seconds: float, qs: list[str], *, headers=None, user=None) -> list[dict]:
    """Send requests at `rate` per second for `seconds`, whatever the answers' latency; one dict per request."""
    import httpx

    results: list[dict] = []
    n = int(rate * seconds)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=512)) as client:
        async def one(i: int) -> None:
            started = time.perf_counter()
            body = {"question": qs[i % len(qs)], "user_id": user(i) if user else None}
            try:
                reply = await client.post("/v1/ask", json=body, headers=headers or {})
                results.append({"status": reply.status_code, "ms": (time.perf_counter() - started) * 1000,
                                "retry_after": reply.headers.get("retry-after")})
            except httpx.HTTPError as exc:
                results.append({"status": type(exc).__name__, "ms": (time.perf_counter() - started) * 1000})

        t0, tasks = time.perf_counter(), []
        for i in range(n):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return results


def summary(results: list[dict]) -> dict:
    statuses: dict[str, int] = {}
    for r in results:
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
    ok = [r["ms"] for r in results if r["status"] == 200]
    return {"requests": len(results), "statuses": statuses, "admitted_p50_ms": pct(ok, 0.5) if ok else None,
            "admitted_p99_ms": pct(ok, 0.99) if ok else None,
            "p99_ms": pct([r["ms"] for r in results], 0.99) if results else None}


def count_events(home: Path) -> int:
    from sqlalchemy import func, select

    from ragops.registry import Registry
    from ragops.registry.models import RequestEvent

    registry = Registry(f"sqlite:///{(home / 'registry.sqlite').resolve()}")
    with registry.session() as s:
        n = s.scalar(select(func.count()).select_from(RequestEvent))
    registry.dispose()
    return n


def capacity(home: Path, qs: list[str], step_s: float) -> dict:
    server = Server(home, RAGOPS_RATE_LIMIT_ENABLED="false")
    server.wait()
    steps, best = [], 0.0
    try:
        asyncio.run(open_loop(server.url, 5, 2, qs))  # warm up
        for rate in (5, 10, 15, 20, 25, 30, 35, 40, 50, 60, 70, 80):
            s = summary(asyncio.run(open_loop(server.url, rate, step_s, qs)))
            errors = sum(v for k, v in s["statuses"].items() if k != "200")
            steps.append({"rate_rps": rate, **s})
            if errors or s["p99_ms"] >= 1000:
                break
            best = rate
    finally:
        server.stop()
    return {"capacity_rps": best, "steps": steps}


def flood(home: Path, qs: list[str], rate: float, seconds: float, work: Path) -> dict:
    from ragops.audit.apikeys import issue

    keys = work / "api-keys.yaml"
    secret, _ = issue(keys, "well-behaved")
    warm_key, _ = issue(keys, "warm-up")
    before = count_events(home)
    server = Server(home, RAGOPS_API_KEYS=str(keys))
    server.wait()
    rss_cold = server.rss_mb()
    samples: list[float] = []

    async def sample():
        while True:
            samples.append(server.rss_mb())
            await asyncio.sleep(seconds / 6)

    async def both():
        sampler = asyncio.create_task(sample())
        try:
            return await asyncio.gather(
                open_loop(server.url, rate, seconds, qs, user=lambda i: f"rotating-{i}"),
                open_loop(server.url, 1.0, seconds, qs, headers={"X-API-Key": secret}, user=lambda i: "good"))
        finally:
            sampler.cancel()

    try:
        # warm-up, not counted: thread pools, allocator arenas and caches fill once, as in any serving process
        warm = asyncio.run(open_loop(server.url, 10, 10, qs, headers={"X-API-Key": warm_key}, user=lambda i: "warm"))
        rss_start = server.rss_mb()
        attack, good = asyncio.run(both())
        rss_end = server.rss_mb()
    finally:
        server.stop()
    stored = count_events(home) - before - len(warm)
    answered = sum(1 for r in attack + good if isinstance(r["status"], int))
    refused = [r for r in attack + good if r["status"] == 429]
    return {"offered_rps": rate, "seconds": seconds, "attacker": summary(attack), "well_behaved": summary(good),
            "well_behaved_success_rate": round(sum(r["status"] == 200 for r in good) / max(1, len(good)), 4),
            "five_xx": sum(1 for r in attack + good if isinstance(r["status"], int) and r["status"] >= 500),
            "429_with_retry_after": f"{sum(1 for r in refused if r['retry_after'])}/{len(refused)}",
            "rss_mb": {"cold": rss_cold, "start": rss_start, "end": rss_end, "growth": round(rss_end / rss_start - 1, 4),
                       "during": samples},
            "events_stored": stored, "requests_answered": answered}


def expensive_question(rng: random.Random) -> str:
    """2,000 characters of random words: the most terms and wordpieces /v1 accepts."""
    return "".join(rng.choices(string.ascii_lowercase + " ", k=2000))


async def closed_loop(url: str, seconds: float, headers: dict, rng: random.Random) -> list[dict]:
    """One client sending expensive questions back to back for `seconds`, sleeping out each 429's Retry-After."""
    import httpx

    results: list[dict] = []
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                reply = await client.post("/v1/ask", json={"question": expensive_question(rng)}, headers=headers)
            except httpx.HTTPError as exc:
                results.append({"status": type(exc).__name__, "ms": (time.perf_counter() - started) * 1000})
                continue
            retry_after = reply.headers.get("retry-after")
            results.append({"status": reply.status_code, "ms": (time.perf_counter() - started) * 1000,
                            "retry_after": retry_after})
            if reply.status_code == 429:
                await asyncio.sleep(min(float(retry_after or 1), max(0.0, deadline - time.perf_counter())))
    return results


def cost_flood(home: Path, qs: list[str], seconds: float, work: Path, clients: int = 15, **env: str) -> dict:
    from ragops.audit.apikeys import issue

    keys = work / "cost-keys.yaml"
    flooders = [issue(keys, f"flood-{i}")[0] for i in range(clients)]
    good_key, _ = issue(keys, "well-behaved")
    server = Server(home, RAGOPS_API_KEYS=str(keys), **env)
    server.wait()

    async def both():
        rng = random.Random(22)
        return await asyncio.gather(
            open_loop(server.url, 4.0, seconds, qs, headers={"X-API-Key": good_key}, user=lambda i: "good"),
            *(closed_loop(server.url, seconds, {"X-API-Key": key}, random.Random(rng.random())) for key in flooders))

    try:
        asyncio.run(open_loop(server.url, 5, 2, qs, headers={"X-API-Key": good_key}))  # warm up, not counted
        good, *floods = asyncio.run(both())
    finally:
        server.stop()
    flood_results = [r for f in floods for r in f]
    refused = [r for r in flood_results if r["status"] == 429]
    return {"seconds": seconds, "flood_clients": clients, "well_behaved": summary(good),
            "flood": summary(flood_results),
            "flood_429_share": round(len(refused) / max(1, len(flood_results)), 4),
            "flood_retry_after_s": sorted({r["retry_after"] for r in refused}),
            "flood_429_with_retry_after": f"{sum(1 for r in refused if r['retry_after'])}/{len(refused)}"}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", default=str(RHDH / "docs"))
    parser.add_argument("--home", help="an indexed RAGOPS_HOME to copy (else --docs is indexed first)")
    parser.add_argument("--flood-s", type=float, default=60.0)
    parser.add_argument("--step-s", type=float, default=8.0)
    parser.add_argument("--cost-s", type=float, default=30.0)
    parser.add_argument("--only", choices=["cost"], help="run one scenario alone")
    parser.add_argument("--cost-gate-off", action="store_true", help="the cost flood without admission by cost, "
                        "for comparison (RAGOPS_EXPENSIVE_COST above any question's cost)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ragops-bench-load-"))
    try:
        home = work / "home"
        if args.home:
            shutil.copytree(args.home, home)
        else:
            from ragops.config import Settings
            from ragops.ingest.refresh import Refresher

            source = Path(args.docs) if Path(args.docs).exists() else REPO / "docs"
            Refresher(Settings(home=home, source=source.as_uri())).run()
        qs = questions(100)
        off = {"RAGOPS_EXPENSIVE_COST": str(10**9)} if args.cost_gate_off else {}
        result = {"cost_flood": cost_flood(home, qs, args.cost_s, work, **off)}
        if args.only is None:
            found = capacity(home, qs, args.step_s)
            rate = max(2 * found["capacity_rps"], 10)
            result = {"capacity": found, "flood": flood(home, qs, rate, args.flood_s, work)} | result
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
