"""rollout and reindex: safe change, from a blue/green candidate to a staged canary."""

from __future__ import annotations

from ragops.cli import actor
from ragops.config import Settings
from ragops.errors import RagopsError


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
            raise RagopsError("`ragops rollout start` needs --release NAME")
        decision = machine.start(args.release, actor())
    elif action == "gate":
        decision = machine.step()
    else:
        decision = getattr(machine, action)(actor(), *([args.reason] if args.reason and action in ("abort", "rollback") else []))
    return decision.to_dict(), f"{decision.decision}: {decision.from_percent:g}% -> {decision.to_percent:g}%: {decision.reason}", 0


def reindex(args):
    from ragops.rollout.reindex import build_candidate, evaluate_candidate, register_candidate, validate_candidate

    settings = Settings()
    overrides = {k: v for k, v in {"embedding_model": args.embedding_model, "chunk_max_tokens": args.chunk_max_tokens,
                                   "embedding_precision": args.embedding_precision}.items() if v}
    build = build_candidate(settings, source=args.source, overrides=overrides)
    checks = validate_candidate(settings, build)
    evaluation = evaluate_candidate(settings, build, testset=args.testset)
    release = register_candidate(settings, build, {}, actor())
    payload = {"build": build.to_dict(), "validation": checks, "release": release.name,
               "evaluation": {"stable": evaluation["stable"]["metrics"], "candidate": evaluation["candidate"]["metrics"]}}
    return payload, f"registered {release.name} (index version {build.index_version_id}); start it with `ragops rollout start --release {release.name}`", 0


def add_parsers(sub, common) -> None:
    p = sub.add_parser("rollout", parents=[common], help="the staged canary rollout of a release")
    p.add_argument("action", choices=["status", "start", "pause", "resume", "abort", "rollback", "gate"])
    p.add_argument("--release", help="the candidate release (for start)")
    p.add_argument("--reason", help="why (for abort and rollback)")
    p.set_defaults(handler=rollout)

    p = sub.add_parser("reindex", parents=[common], help="blue/green: build, validate, evaluate and register a candidate")
    p.add_argument("--source")
    p.add_argument("--embedding-model")
    p.add_argument("--chunk-max-tokens", type=int)
    p.add_argument("--embedding-precision", choices=["auto", "float32", "bfloat16", "int8"])
    p.add_argument("--testset")
    p.set_defaults(handler=reindex)
