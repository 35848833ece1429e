"""eval: the evaluation test set through the answer pipeline, compared with earlier runs."""

from __future__ import annotations

from ragops.config import Settings


def evaluate(args):
    if args.action == "accept":
        return accept(args)
    from ragops.evaluation.report import gate, post_reports
    from ragops.evaluation.runner import EvaluationRegression, run_evaluation

    settings = Settings()
    reports = run_evaluation(settings, args.testset, url=args.url)
    if not args.no_report:
        post_reports(settings, reports)
    stable = reports[0]
    payload = {"metrics": stable.metrics, "n": stable.n, "run_id": stable.run_id, "regressed": stable.regressed,
               "releases": [r.to_dict() for r in reports]}
    human = "\n".join(f"{r.release} ({r.variant}) run {r.run_id}: " + ", ".join(f"{k}={v:.3f}" for k, v in r.metrics.items())
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

    if args.run_id is None:
        raise RagopsError("`ragops eval accept` needs the RUN_ID to accept as the baseline")
    result = accept_run(Registry(Settings().registry_url), args.run_id, actor())
    return result, (f"run {result['run_id']} ({result['release']}, {result['status']}) is accepted as a baseline by "
                    f"{result['accepted_by']} at {result['accepted_at']}"), 0


def add_parsers(sub, common) -> None:
    p = sub.add_parser("eval", parents=[common], help="evaluate the stable (and candidate) release on a test set; "
                                                      "`eval accept RUN_ID` accepts a run as the baseline")
    p.add_argument("action", nargs="?", choices=["run", "accept"], default="run")
    p.add_argument("run_id", nargs="?", type=int, help="for accept: the evaluation run to accept")
    p.add_argument("--testset", help="JSONL test set (default: RAGOPS_EVAL_TESTSET or the bundled one)")
    p.add_argument("--url", help="evaluate a running serving app at this base URL instead of in process")
    p.add_argument("--no-report", action="store_true", help="do not post the report to Slack / the outbox")
    p.set_defaults(handler=evaluate)
