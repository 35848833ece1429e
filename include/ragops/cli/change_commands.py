"""rollout, audit and reindex: safe change from the command line."""

from __future__ import annotations

import getpass
from datetime import datetime, timezone

from ragops.cli import command
from ragops.config import Settings


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@command("rollout")
def rollout(args):
    from ragops.rollout.machine import Rollout

    machine = Rollout(Settings())
    action = args.action
    if action == "status":
        status = machine.status()
        human = (f"{status['status']}: stable {status['stable']}, candidate {status['candidate'] or '-'} at "
                 f"{status['percent']:g}% (stages {status['stages']})")
        return status, human, 0
    if action == "start":
        if not args.release:
            from ragops.errors import RagopsError

            raise RagopsError("`ragops rollout start` needs --release NAME")
        decision = machine.start(args.release, _actor())
    elif action == "gate":
        decision = machine.step()
    else:
        decision = getattr(machine, action)(_actor(), *([args.reason] if args.reason and action in ("abort", "rollback") else []))
    return decision.to_dict(), f"{decision.decision}: {decision.from_percent:g}% -> {decision.to_percent:g}%: {decision.reason}", 0


@command("audit")
def audit(args):
    from ragops.audit.analysis import CriticalFindings, fail_on_critical, previous_month, run_audit
    from ragops.monitoring.review import parse_window
    from ragops.notify import build_notifier
    from ragops.notify.blocks import audit_report

    settings = Settings()
    now = datetime.now(timezone.utc)
    start, end = (now - parse_window(args.since), now) if args.since else previous_month(now)
    report = run_audit(settings, start, end)
    build_notifier(settings).send(audit_report(report.to_dict()))
    payload = report.to_dict()
    human = "\n".join(f"[{f.severity}] {f.message}" for f in report.findings) or "no findings"
    try:
        fail_on_critical(report)
    except CriticalFindings as exc:
        payload["error"] = exc.to_dict()["error"]
        return payload, human, exc.exit_code
    return payload, human, 0


@command("reindex")
def reindex(args):
    from ragops.rollout.reindex import build_candidate, evaluate_candidate, register_candidate, validate_candidate

    settings = Settings()
    overrides = {k: v for k, v in {"embedding_model": args.embedding_model,
                                   "chunk_max_tokens": args.chunk_max_tokens}.items() if v}
    build = build_candidate(settings, source=args.source, overrides=overrides)
    checks = validate_candidate(settings, build)
    evaluation = evaluate_candidate(settings, build, testset=args.testset)
    release = register_candidate(settings, build, {}, _actor())
    payload = {"build": build.to_dict(), "validation": checks, "release": release.name,
               "evaluation": {"stable": evaluation["stable"]["metrics"], "candidate": evaluation["candidate"]["metrics"]}}
    return payload, f"registered {release.name} (index version {build.index_version_id}); start it with `ragops rollout start --release {release.name}`", 0


def add_parsers(sub, common) -> None:
    p = sub.add_parser("rollout", parents=[common], help="the staged canary rollout of a release")
    p.add_argument("action", choices=["status", "start", "pause", "resume", "abort", "rollback", "gate"])
    p.add_argument("--release", help="the candidate release (for start)")
    p.add_argument("--reason", help="why (for abort and rollback)")

    p = sub.add_parser("audit", parents=[common], help="audit MCP permissions and the access log")
    p.add_argument("--since", help="period length ending now, e.g. 30d (default: the previous calendar month)")

    p = sub.add_parser("reindex", parents=[common], help="blue/green: build, validate, evaluate and register a candidate")
    p.add_argument("--source")
    p.add_argument("--embedding-model")
    p.add_argument("--chunk-max-tokens", type=int)
    p.add_argument("--testset")
