"""monitor: request metrics, SLOs and health over a window."""

from __future__ import annotations

from ragops.config import Settings


def monitor(args):
    from ragops.monitoring.review import review

    result = review(Settings(), since=args.since)
    return result.to_dict(), result.summary_text(), 0


def add_parsers(sub, common) -> None:
    p = sub.add_parser("monitor", parents=[common], help="request metrics, SLOs and health over a window")
    p.add_argument("--since", default="24h", help="window length, e.g. 24h, 90m, 7d (default 24h)")
    p.set_defaults(handler=monitor)
