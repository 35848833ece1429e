"""monitor: request metrics, SLOs and health over a window; `monitor quality`: the live quality-drift check."""

from __future__ import annotations

from datetime import datetime

from ragops.config import Settings
from ragops.errors import RagopsError


def monitor(args):
    if args.what == "quality":
        return quality(args)
    from ragops.monitoring.review import review

    result = review(Settings(), since=args.since)
    return result.to_dict(), result.summary_text(), 0


def quality(args):
    """One drift check now (or at --at), recorded and alerted like the hourly DAG's."""
    from ragops.monitoring.drift import check

    try:
        end = datetime.fromisoformat(args.at) if args.at else None
    except ValueError:
        raise RagopsError(f"--at {args.at!r} is not an ISO date and time, e.g. 2026-11-20T09:00:00+00:00") from None
    result = check(Settings(), end=end)
    lines = [f"window {result['window'][0][:16]} to {result['window'][1][:16]} UTC"]
    if result["baseline"] is None:
        lines.append("no baseline yet: the accepted release has not served real users before this window")
    for row in result["signals"]:
        state = (f"SHIFTED since {row['since'][:16]}" if row["shifted"] else
                 f"crossed at {row['streak']} check(s), not yet sustained" if row["crossed"] else row["verdict"])
        lines.append(f"{row['release']} ({row['variant']}) {row['signal']}: {_share(row['baseline'])} -> "
                     f"{_share(row['current'])} [{state}] {row['requests']} answers, {row['users']} users")
    return result, "\n".join(lines), 0


def _share(x) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def add_parsers(sub, common) -> None:
    p = sub.add_parser("monitor", parents=[common], help="request metrics, SLOs and health over a window; "
                       "`monitor quality`: the live quality-drift check")
    p.add_argument("what", nargs="?", choices=("review", "quality"), default="review",
                   help="review (default): the daily figures; quality: live quality signals against the baseline")
    p.add_argument("--since", default="24h", help="review: window length, e.g. 24h, 90m, 7d (default 24h)")
    p.add_argument("--at", default=None, help="quality: the window's end, ISO (default now)")
    p.set_defaults(handler=monitor)
