"""`ragops` entry point: with --json, exactly one JSON document on stdout; logs and progress on stderr."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from ragops.cli import audit, evaluation, keys, models, monitoring, privacy, refresh, rollout, serve, tokens, tools
from ragops.errors import RagopsError
from ragops.index import close_backends

DOMAINS = (refresh, serve, evaluation, monitoring, rollout, audit, keys, tokens, tools, models, privacy)
QUIET = ("httpx", "sentence_transformers", "great_expectations", "alembic", "urllib3")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ragops", description="Run and inspect the ragops platform.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print exactly one JSON document on stdout")
    common.add_argument("-v", "--verbose", action="store_true", help="log debug output to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    for domain in DOMAINS:
        domain.add_parsers(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        result = args.handler(args)
    except RagopsError as exc:
        emit(args, exc.to_dict(), human=f"error ({exc.code}): {exc}")
        return exc.exit_code
    finally:
        close_backends()  # the index client (Weaviate) is closed when the command ends
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
