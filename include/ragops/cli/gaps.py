"""gaps: the questions the knowledge base keeps failing, clustered and ranked (docs/content-gaps.md)."""

from __future__ import annotations

from ragops.config import Settings
from ragops.feedback.redact import printable


def gaps(args):
    from ragops.gaps import run_gaps
    from ragops.monitoring.review import parse_window

    report = run_gaps(Settings(), parse_window(args.since), post=args.post)
    return report.to_dict(), human(report.to_dict()), 0


def human(report: dict) -> str:
    lines = [f"content gaps {report['period_start'][:16]} → {report['period_end'][:16]}: {report['questions']} failed "
             f"questions ({report['refused']} refused, {report['down_voted']} down-voted) from {report['users']} users, "
             f"{len(report['clusters'])} clusters" + (" (capped)" if report["capped"] else "")]
    for g in report["clusters"]:
        where = g["belongs_in"] or "no index"
        lines.append(f"{g['rank']:>2}. {printable(g['name'])}: {g['users']} users, {g['questions']} questions, {g['trend']} "
                     f"(before: {g['previous']}); {'new page? nearest ' if g['new_page'] else 'belongs in '}{where}")
        # a report stored before controls were dropped at storage must not drive the reader's terminal
        lines += [f"      - {printable(r['question'])[:120]}" for r in g["representatives"]]
    return "\n".join(lines)


def add_parsers(sub, common) -> None:
    p = sub.add_parser("gaps", parents=[common], help="cluster the refused and down-voted questions of a period "
                                                      "into content gaps, store the report (and post it with --post)")
    p.add_argument("--since", default="30d", help="period length before now, e.g. 30d, 7d, 24h (default 30d)")
    p.add_argument("--post", action="store_true", help="also post the report to Slack / the outbox")
    p.set_defaults(handler=gaps)
