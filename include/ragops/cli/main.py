"""`ragops` entry point: with --json, exactly one JSON document on stdout; logs and progress on stderr."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from ragops.cli import COMMANDS
from ragops.errors import RagopsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ragops", description="Run and inspect the ragops platform.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print exactly one JSON document on stdout")
    common.add_argument("-v", "--verbose", action="store_true", help="log debug output to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("refresh", parents=[common], help="refresh the index from the document source")
    p.add_argument("--source", help="source URI (default: RAGOPS_SOURCE, the repo's docs/)")
    p.add_argument("--full", action="store_true", help="re-process every document, not only changed ones")
    p.add_argument("--allow-mass-delete", action="store_true", help="override the shrinkage guard")

    p = sub.add_parser("search", parents=[common], help="search the live index")
    p.add_argument("query", nargs="?", help="the query (or use --batch)")
    p.add_argument("-k", type=int, default=5, help="number of results (default 5)")
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    p.add_argument("--batch", metavar="FILE.jsonl", help='lines {"id","question"}; one output line per query')

    from ragops.cli import extra

    extra.add_parsers(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "sentence_transformers", "great_expectations", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from ragops.cli import change_commands, commands, ops_commands, serving_commands  # noqa: F401  (register)

    try:
        result = COMMANDS[args.command](args)
    except RagopsError as exc:
        emit(args, exc.to_dict(), human=f"error ({exc.code}): {exc}")
        return exc.exit_code
    if isinstance(result, tuple):
        payload, human, code = result
    else:
        payload, human, code = result, None, 0
    if payload is not None:
        emit(args, payload, human=human)
    return code


def emit(args, payload: dict, human: str | None = None) -> None:
    if getattr(args, "json", False) or human is None:
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
    else:
        sys.stdout.write(human.rstrip() + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
