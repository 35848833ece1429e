"""Anchors of the MCP access log outside the database it protects: a key the registry never holds, and signed heads.

Whoever can write the registry can rewrite the chain and rehash it (ragops.audit.chain). Two things they cannot
reach hold it: the key (RAGOPS_AUDIT_SIGNING_KEY or a 0600 key file), with which the writers MAC every row, and the
anchors, chain heads that the `audit_anchor` DAG signs with the key and publishes to Slack and to an append-only
file. `verify_anchored` holds the chain against both. What this does and does not catch: docs/serving.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone

from ragops.audit import chain
from ragops.errors import ConfigError, RagopsError
from ragops.notify import Outbox, build_notifier
from ragops.notify.blocks import alert, audit_anchor
from ragops.registry import Registry

MIN_KEY_BYTES = 16
NO_KEY = ("no RAGOPS_AUDIT_SIGNING_KEY is configured: row MACs and anchor signatures were not checked, so rows "
          "written since the last anchor could have been forged or rewritten unseen")


class AuditLogTampered(RagopsError):
    code = "audit_log_tampered"
    exit_code = 7

    def __init__(self, result: chain.Verification):
        super().__init__(f"{result.total_problems} problem(s) in the MCP access log {result.problem_counts}: "
                         + "; ".join(p["message"] for p in result.problems[:5]))
        self.result = result


def signing_key(settings) -> bytes | None:
    """The key from the settings or its file; None when neither is set. A key file others may read is refused."""
    if settings.audit_signing_key is not None:
        return _checked(settings.audit_signing_key.get_secret_value().encode(), "RAGOPS_AUDIT_SIGNING_KEY")
    path = settings.audit_signing_key_file
    if path is None:
        return None
    name = f"RAGOPS_AUDIT_SIGNING_KEY_FILE {path}"
    try:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigError(f"{name} has mode {mode:o}: others may read or change the audit key; "
                              f"`chmod 600 {path}` and make sure only the ragops user owns it")
        return _checked(path.read_bytes().strip(), name)
    except OSError as exc:
        raise ConfigError(f"{name} cannot be read: {exc.strerror}") from exc


def _checked(key: bytes, name: str) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"{name} is shorter than {MIN_KEY_BYTES} bytes; make one with `openssl rand -hex 32`")
    return key


@dataclass(frozen=True)
class Anchor:
    """A published chain head: the row `seq` had `head_hash` when it was read at `ts`, and rows from `macs_from` on
    carried their MAC. Publishing the same head twice (a task run again) only repeats a constraint."""

    seq: int
    head_hash: str
    ts: str
    macs_from: int | None = None
    chain: str = chain.CHAIN
    signature: str = ""

    def _mac(self, key: bytes) -> str:
        body = json.dumps(asdict(self) | {"signature": ""}, sort_keys=True, separators=(",", ":"))
        return hmac.new(key, f"anchor\n{body}".encode(), hashlib.sha256).hexdigest()

    def signed(self, key: bytes) -> Anchor:
        return replace(self, signature=self._mac(key))

    def valid(self, key: bytes) -> bool:
        return hmac.compare_digest(self.signature, self._mac(key))

    @classmethod
    def from_dict(cls, record: dict) -> Anchor:
        return cls(**{k: record[k] for k in ("seq", "head_hash", "ts", "macs_from", "chain", "signature")})


def read_anchors(path) -> list[Anchor]:
    """The anchors published so far, oldest first; a line that is not an anchor fails loudly."""
    try:
        return [Anchor.from_dict(r) for r in Outbox(path).read()]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the audit anchor file {path} holds a line that is not an anchor: {exc}") from exc


def verify_anchored(session, key: bytes | None, anchors: list[Anchor]) -> chain.Verification:
    """Verify the chain with its MACs and against every anchor; an anchor the key did not sign is itself a problem.

    An unsigned anchor (published before the key existed) is still held against the chain: a false anchor can
    only raise an alarm, never hide a rewrite. One that follows a signed anchor was not published by the DAG, which
    had the key by then: it is a forged anchor, so the alarm names the file, not the database.
    """
    trusted, forged, unsigned_late, signed_seen = [], [], [], False
    for a in anchors:
        if key is not None and a.signature and not a.valid(key):
            forged.append(a)
        elif key is not None and not a.signature and signed_seen:  # the file is appended in order: the DAG signed
            unsigned_late.append(a)                                 # before this one, so someone else wrote it
        else:
            trusted.append(a)
            signed_seen = signed_seen or bool(a.signature)
    result = chain.verify(session, key, [a for a in trusted if a.chain == chain.CHAIN])
    for a in forged:
        result.add({"kind": "forged_anchor", "seq": a.seq, "message": f"the anchor of row {a.seq} ({a.ts}) was not "
                    f"signed with the key: someone wrote to the anchor file"})
    for a in unsigned_late:
        result.add({"kind": "forged_anchor", "seq": a.seq, "message": f"the anchor of row {a.seq} ({a.ts}) is "
                    f"unsigned, though anchors before it were signed: someone wrote to the anchor file (or the DAG "
                    f"ran without the key)"})
    if key is None:
        result.warnings.append(NO_KEY)
    elif any(not a.signature for a in trusted):
        result.warnings.append("some anchors are unsigned (published before the key was configured)")
    if not anchors:
        result.warnings.append("no anchor has been published yet: a rewrite of the whole log cannot be seen; "
                               "the audit_anchor DAG publishes one daily")
    return result


def publish(settings, *, registry: Registry | None = None, notifier=None) -> tuple[Anchor, chain.Verification]:
    """Verify the access log, then sign its head and publish it to the anchor file and Slack (the `audit_anchor`
    DAG, daily). A log that fails verification is alerted and raises AuditLogTampered; no anchor is published."""
    key = signing_key(settings)
    anchors = read_anchors(settings.audit_anchor_path)
    own = registry is None
    registry = registry or Registry(settings.registry_url)
    try:
        with registry.session() as s:
            result = verify_anchored(s, key, anchors)
    finally:
        if own:
            registry.dispose()
    notifier = notifier or build_notifier(settings)
    if not result.ok:
        notifier.send(alert("MCP access log tampered", "\n".join(p["message"] for p in result.problems[:10]),
                            "compare the registry with a backup and the anchors; run `ragops audit verify`"))
        raise AuditLogTampered(result)
    anchor = Anchor(result.head_seq, result.head_hash, datetime.now(timezone.utc).isoformat(), result.macs_from)
    anchor = anchor.signed(key) if key is not None else anchor
    Outbox(settings.audit_anchor_path).append(asdict(anchor))
    notifier.send(audit_anchor(asdict(anchor), result.warnings))
    return anchor, result
