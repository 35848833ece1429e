"""refresh and search: keeping the index fresh and reading it."""

from __future__ import annotations

import json
import logging
import sys

from ragops.config import Settings
from ragops.errors import RagopsError, RefreshBlocked, RefreshConflict, RefreshFailed

log = logging.getLogger(__name__)


def refresh(args):
    from ragops.ingest.refresh import Refresher
    from ragops.notify import build_notifier
    from ragops.notify.blocks import refresh_report

    settings = Settings()
    settings.ensure_home()
    notifier = build_notifier(settings)
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=0, desc="embedding batches", file=sys.stderr, unit="batch")

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    source = args.source or settings.source
    try:
        report = Refresher(settings).run(source, full=args.full, allow_mass_delete=args.allow_mass_delete,
                                         on_progress=progress, reconcile=args.reconcile)
    except RefreshConflict:
        raise  # another refresh is running or just ran: nothing failed, nothing to alert
    except RagopsError as exc:
        notifier.send(_failure_alert(exc))
        raise
    except Exception as exc:  # noqa: BLE001 - the run is already recorded failed; the operator gets JSON and an alert
        log.exception("the refresh failed")
        failed = RefreshFailed(f"the refresh failed: {type(exc).__name__}: {exc}")
        notifier.send(_failure_alert(failed))
        raise failed from exc
    finally:
        if bar is not None:
            bar.close()
    notifier.send(refresh_report(report.to_dict(), source))
    payload = {k: v for k, v in report.to_dict().items() if k != "changed"}
    d, c = report.documents, report.chunks
    human = (f"index version {report.index_version}: {d['added']} added, {d['changed']} changed, {d['deleted']} deleted, "
             f"{d['unchanged']} unchanged, {d['quarantined']} quarantined; chunks {c['embedded']} embedded, "
             f"{c['reused']} reused, {c['deleted']} deleted ({report.duration_s} s)")
    for q in report.quarantine:
        human += f"\n  quarantined {q['uri']}: {q['reason']}"
    return payload, human, 0


def _failure_alert(exc: RagopsError):
    from ragops.notify.blocks import alert

    if isinstance(exc, RefreshBlocked):
        return alert("Document refresh aborted", str(exc), "fix the source, or override the guard if intended")
    return alert("Document refresh failed", f"{exc.code}: {exc}",
                 "the live index was not changed; fix the cause and run the refresh again")


def doctor(args):
    from ragops.ingest.doctor import IndexInconsistent, check, repair

    settings = Settings()
    report = repair(settings, allow_mass_delete=args.allow_mass_delete) if args.repair else check(settings)
    payload = report.to_dict()
    if report.ok:
        return payload, report.human(), 0
    hint = "" if args.repair else "; run `ragops doctor --repair` to fix"
    error = IndexInconsistent("; ".join(report.problems()) + hint)
    payload["error"] = error.to_dict()["error"]
    return payload, report.human(), error.exit_code


def search(args):
    from ragops.answer.retrieval import Retriever

    if not args.query and not args.batch:
        raise RagopsError("give a QUERY or --batch FILE.jsonl")
    if not 1 <= args.k <= 100:
        raise RagopsError("-k must be between 1 and 100")
    retriever = Retriever(Settings())
    if args.batch:
        try:
            with open(args.batch, encoding="utf-8") as f:
                items = [json.loads(line) for line in f if line.strip()]
        except (OSError, json.JSONDecodeError) as exc:
            raise RagopsError(f"cannot read batch file {args.batch}: {exc}") from exc
        results = retriever.search_many([item["question"] for item in items], args.k, args.mode)
        for item, hits in zip(items, results):
            sys.stdout.write(json.dumps({"id": item.get("id"), "results": [h.to_dict() for h in hits]}) + "\n")
        return None
    hits = retriever.search(args.query, args.k, args.mode)
    human = "\n\n".join(f"[{i + 1}] {h.score:.4f} {h.doc_uri}\n{h.text[:300]}" for i, h in enumerate(hits)) or "no results"
    return {"results": [h.to_dict() for h in hits]}, human, 0


def add_parsers(sub, common) -> None:
    p = sub.add_parser("refresh", parents=[common], help="refresh the index from the document source")
    p.add_argument("--source", help="source URI (default: RAGOPS_SOURCE, the repo's docs/)")
    p.add_argument("--full", action="store_true", help="re-process every document, not only changed ones")
    p.add_argument("--allow-mass-delete", action="store_true", help="override the shrinkage guard")
    p.add_argument("--reconcile", action="store_true", help="list and fingerprint the whole source instead of "
                   "reading its change feed (what the weekly run does)")
    p.set_defaults(handler=refresh)

    p = sub.add_parser("doctor", parents=[common], help="check the index against the registry (and repair it)")
    p.add_argument("--repair", action="store_true", help="fix what was found with one refresh under the lock; an "
                   "unreadable index is rebuilt from the sources into a new collection")
    p.add_argument("--allow-mass-delete", action="store_true", help="let the repair delete past the shrinkage guard, "
                   "or rebuild without the documents the source lost")
    p.set_defaults(handler=doctor)

    p = sub.add_parser("search", parents=[common], help="search the live index")
    p.add_argument("query", nargs="?", help="the query (or use --batch)")
    p.add_argument("-k", type=int, default=5, help="number of results (default 5)")
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    p.add_argument("--batch", metavar="FILE.jsonl", help='lines {"id","question"}; one output line per query')
    p.set_defaults(handler=search)
