"""eval: the evaluation test set through the answer pipeline, compared with earlier runs."""

from __future__ import annotations

from ragops.config import Settings


def evaluate(args):
    if args.action == "accept":
        return accept(args)
    if args.action == "testset":
        return testset(args)
    from ragops.evaluation.report import gate, post_reports
    from ragops.evaluation.runner import EvaluationRegression, run_evaluation, side_by_side

    settings = Settings()
    reports = run_evaluation(settings, args.testset, url=args.url)
    if not args.no_report:
        post_reports(settings, reports)
    stable = reports[0]
    payload = {"metrics": stable.metrics, "n": stable.n, "run_id": stable.run_id, "regressed": stable.regressed,
               "releases": [r.to_dict() for r in reports], "side_by_side": side_by_side(reports)}
    human = "\n".join(f"{r.release} ({r.variant}, {r.testset_kind} set) run {r.run_id}: " + ", ".join(f"{k}={v:.3f}" for k, v in r.metrics.items())
                      + (" REGRESSED" if r.regressed else "") for r in reports)
    try:
        gate(reports)
    except EvaluationRegression as exc:
        payload["error"] = exc.to_dict()["error"]
        return payload, human + f"\n{exc}", exc.exit_code
    return payload, human, 0


def accept(args):
    from ragops.cli import actor
    from ragops.errors import RagopsError
    from ragops.evaluation.runner import accept_run
    from ragops.registry import Registry

    if args.run_id is None or not str(args.run_id).isdigit():
        raise RagopsError("`ragops eval accept` needs the RUN_ID (a number) to accept as the baseline")
    result = accept_run(Registry(Settings().registry_url), int(args.run_id), actor())
    return result, (f"run {result['run_id']} ({result['release']}, {result['status']}) is accepted as a baseline by "
                    f"{result['accepted_by']} at {result['accepted_at']}"), 0


def testset(args):
    """`eval testset propose [--since 30d] [--out FILE]` and `eval testset accept FILE` (docs/content-gaps.md)."""
    from pathlib import Path

    from ragops.cli import actor
    from ragops.errors import RagopsError
    from ragops.evaluation import growth
    from ragops.monitoring.review import parse_window

    settings = Settings()
    if args.run_id == "propose":
        candidates = growth.propose(settings, parse_window(args.since))
        out = Path(args.out) if args.out else settings.home / "testsets" / "proposed.jsonl"
        growth.write_candidates(candidates, out)
        sources = {s: sum(c["provenance"]["source"] == s for c in candidates) for s in ("content_gap", "down_voted")}
        return ({"path": str(out), "candidates": len(candidates), "sources": sources},
                f"{len(candidates)} candidate questions ({sources['content_gap']} from content gaps, "
                f"{sources['down_voted']} down-voted) in {out}: write each one's reference_answer and "
                f"reference_doc_ids, delete the ones to skip, then `ragops eval testset accept {out}`", 0)
    if args.run_id == "accept":
        if not args.file:
            raise RagopsError("`ragops eval testset accept` needs the reviewed FILE")
        result = growth.accept(settings, args.file, actor())
        refused = "".join(f"\n  refused {r['id'] or 'line ' + str(r['line'])}: {r['reason']}" for r in result["refused"])
        return result, (f"grown test set version {result['version']} ({result['items']} questions, "
                        f"{len(result['added'])} added) at {result['path']}, sha256 {result['sha256'][:16]}"
                        + refused), 0
    raise RagopsError("use `ragops eval testset propose` or `ragops eval testset accept FILE`")


def add_parsers(sub, common) -> None:
    p = sub.add_parser("eval", parents=[common], help="evaluate the stable (and candidate) release on a test set; "
                                                      "`eval accept RUN_ID` accepts a run as the baseline; "
                                                      "`eval testset propose|accept FILE` grows the test set")
    p.add_argument("action", nargs="?", choices=["run", "accept", "testset"], default="run")
    p.add_argument("run_id", nargs="?", help="for accept: the evaluation run to accept; for testset: propose|accept")
    p.add_argument("file", nargs="?", help="for testset accept: the reviewed JSONL file")
    p.add_argument("--since", default="30d", help="for testset propose: the period (default 30d)")
    p.add_argument("--out", help="for testset propose: where to write the candidates "
                                 "(default: testsets/proposed.jsonl under RAGOPS_HOME)")
    p.add_argument("--testset", help="JSONL test set (default: RAGOPS_EVAL_TESTSET or the bundled one)")
    p.add_argument("--url", help="evaluate a running serving app at this base URL instead of in process")
    p.add_argument("--no-report", action="store_true", help="do not post the report to Slack / the outbox")
    p.set_defaults(handler=evaluate)
