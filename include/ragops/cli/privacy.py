"""privacy: clear the text users typed once it is older than the retention period (docs/privacy.md)."""

from __future__ import annotations

from datetime import datetime, timezone

from ragops.config import Settings


def privacy(args):
    from ragops.feedback.retention import cutoff, purge
    from ragops.registry import Registry

    settings = Settings()
    registry = Registry(settings.registry_url)
    try:
        result = purge(registry, cutoff(settings, datetime.now(timezone.utc)), batch=args.batch, dry_run=args.dry_run)
    finally:
        registry.dispose()
    return result.to_dict(), result.summary_text(), 0


def add_parsers(sub, common) -> None:
    p = sub.add_parser("privacy", parents=[common], help="clear question text older than RAGOPS_QUESTION_RETENTION_DAYS")
    p.add_argument("action", choices=["purge"])
    p.add_argument("--dry-run", action="store_true", help="count what would be cleared, change nothing")
    p.add_argument("--batch", type=int, default=1000, help="rows per transaction (default 1000)")
    p.set_defaults(handler=privacy)
