"""rollout and reindex: safe change, from a blue/green candidate to a staged canary."""

from __future__ import annotations

from ragops.cli import actor
from ragops.config import Settings


def rollout(args):
    from ragops.rollout.actions import act

    result = act(Settings(), args.action, actor=actor(), release=args.release, reason=args.reason,
                 probe_requests=args.probe_requests)
    if args.action == "status":
        human = (f"{result['status']}: stable {result['stable']}, candidate {result['candidate'] or '-'} at "
                 f"{result['percent']:g}% (stages {result['stages']})")
    else:
        human = f"{result['decision']}: {result['from_percent']:g}% -> {result['to_percent']:g}%: {result['reason']}"
    return result, human, 0


def reindex(args):
    from ragops.rollout.reindex import reindex as run_reindex

    overrides = {k: v for k, v in {"embedding_model": args.embedding_model,
                                   "chunk_max_tokens": args.chunk_max_tokens}.items() if v}
    result = run_reindex(Settings(), actor=actor(), source=args.source, overrides=overrides, testset=args.testset)
    return result, (f"registered {result['release']} (index version {result['build']['index_version_id']}); start it "
                    f"with `ragops rollout start --release {result['release']}`"), 0


def add_parsers(sub, common) -> None:
    p = sub.add_parser("rollout", parents=[common], help="the staged canary rollout of a release")
    p.add_argument("action", choices=["status", "start", "pause", "resume", "abort", "rollback", "gate"])
    p.add_argument("--release", help="the candidate release (for start)")
    p.add_argument("--reason", help="why (for abort and rollback)")
    p.add_argument("--probe-requests", type=int, default=0,
                   help="gate: when short of evidence, send this many test-set probes to each variant")
    p.set_defaults(handler=rollout)

    p = sub.add_parser("reindex", parents=[common], help="blue/green: build, validate, evaluate and register a candidate")
    p.add_argument("--source")
    p.add_argument("--embedding-model")
    p.add_argument("--chunk-max-tokens", type=int)
    p.add_argument("--testset")
    p.set_defaults(handler=reindex)
