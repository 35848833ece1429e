"""The access log against an insider who can write the registry but holds neither the key nor the anchor file.

Each rewrite of issue 21 fools the bare hash chain (asserted first: that is what `verify` saw before anchors) and
is caught once the rows carry MACs and the head has been anchored outside the database.
"""

import json
import os
from dataclasses import asdict

import pytest
from sqlalchemy import delete, select, update

from ragops.audit import chain
from ragops.audit.anchor import Anchor, AuditLogTampered, publish, read_anchors, signing_key, verify_anchored
from ragops.config import Settings
from ragops.errors import ConfigError
from ragops.registry.models import AuditChainHead, McpAccessLog
from support import AUDIT_KEY, access_row, audit_settings, rehash_access_log

KEY = AUDIT_KEY
_row, _rehash = access_row, rehash_access_log


@pytest.fixture
def settings(settings, registry):
    return audit_settings(settings, registry)


@pytest.fixture
def anchored(registry, settings):
    """Twelve rows written by the app (with the key), anchored by the DAG, then three more rows."""
    with registry.session() as s:
        chain.append(s, [_row(i) for i in range(1, 13)], KEY)
    publish(settings, registry=registry)
    with registry.session() as s:
        chain.append(s, [_row(i) for i in range(13, 16)], KEY)
    return registry


def _kinds(registry, settings, key=KEY) -> set[str]:
    with registry.session() as s:
        assert chain.verify(s).ok, "the bare chain should be fooled by this rewrite"
        result = verify_anchored(s, key, read_anchors(settings.audit_anchor_path))
    return {p["kind"] for p in result.problems}


@pytest.mark.parametrize("key", [KEY, None], ids=["key", "anchors-only"])
def test_an_edited_row_rehashed_with_the_head_moved(anchored, settings, key):
    with anchored.session() as s:
        s.execute(update(McpAccessLog).where(McpAccessLog.seq == 4).values(client="someone-else"))
        _rehash(s)
    kinds = _kinds(anchored, settings, key)
    assert "anchor_mismatch" in kinds
    assert ("forged_row" in kinds) is (key is not None)  # every rehashed row's MAC is now wrong


def test_an_edit_after_the_last_anchor_is_caught_by_the_macs(anchored, settings):
    with anchored.session() as s:
        s.execute(update(McpAccessLog).where(McpAccessLog.seq == 14).values(decision="allowed", client="x"))
        _rehash(s)
    assert _kinds(anchored, settings) == {"forged_row"}


@pytest.mark.parametrize("key", [KEY, None], ids=["key", "anchors-only"])
def test_denials_deleted_and_the_rest_renumbered(anchored, settings, key):
    with anchored.session() as s:
        chain.append(s, [_row(i) for i in range(16, 26)], KEY)
    with anchored.session() as s:
        s.execute(delete(McpAccessLog).where(McpAccessLog.decision == "denied"))
        for n, row in enumerate(s.scalars(select(McpAccessLog).order_by(McpAccessLog.seq)).all(), start=1):
            row.seq = n
            s.flush()
        _rehash(s)
    assert "anchor_mismatch" in _kinds(anchored, settings, key)


@pytest.mark.parametrize("key", [KEY, None], ids=["key", "anchors-only"])
def test_the_newest_rows_cut_off_and_the_head_moved_back(anchored, settings, key):
    publish(settings, registry=anchored)  # the anchor of all 15 rows
    with anchored.session() as s:
        s.execute(delete(McpAccessLog).where(McpAccessLog.seq > 10))
        _rehash(s)
    assert _kinds(anchored, settings, key) == {"truncated"}


@pytest.mark.parametrize("key", [KEY, None], ids=["key", "anchors-only"])
def test_the_whole_log_and_its_head_wiped(anchored, settings, key):
    with anchored.session() as s:
        s.execute(delete(McpAccessLog))
        s.execute(update(AuditChainHead).values(seq=0, head_hash=chain.GENESIS))
    assert _kinds(anchored, settings, key) == {"wiped"}


def test_a_forged_linked_row_appended_without_the_key(anchored, settings):
    with anchored.session() as s:
        chain.append(s, [_row(99, client="alibi")])  # linked exactly as the app links, but with no key
    assert _kinds(anchored, settings) == {"forged_row"}
    with anchored.session() as s:  # a MAC copied from a real row does not fit the forged one either
        [mac] = s.scalars(select(McpAccessLog.row_mac).where(McpAccessLog.seq == 15)).all()
        s.execute(update(McpAccessLog).where(McpAccessLog.seq == 16).values(row_mac=mac))
    assert _kinds(anchored, settings) == {"forged_row"}


def test_rows_without_a_mac_are_forged_once_macs_began(anchored, settings):
    """Stripping every MAC does not turn the log back into one written before the key: the anchor says where MACs
    began."""
    with anchored.session() as s:
        s.execute(update(McpAccessLog).values(row_mac=""))
    assert _kinds(anchored, settings) == {"forged_row"}


def test_rows_from_before_the_key_are_counted_not_flagged(registry, settings):
    with registry.session() as s:
        chain.append(s, [_row(i) for i in range(1, 4)])
        chain.append(s, [_row(i) for i in range(4, 6)], KEY)
    with registry.session() as s:
        result = verify_anchored(s, KEY, [])
    assert result.ok and result.unmaced_rows == 3 and result.macs_from == 4
    assert any("no anchor" in w for w in result.warnings)


def test_an_anchor_the_key_did_not_sign_is_a_problem(anchored, settings):
    [real] = read_anchors(settings.audit_anchor_path)
    fake = Anchor(real.seq, real.head_hash, real.ts, real.macs_from).signed(b"x" * 32)
    with open(settings.audit_anchor_path, "a") as f:
        f.write(json.dumps(asdict(fake)) + "\n")
    assert _kinds(anchored, settings) == {"forged_anchor"}


def test_publish_signs_the_head_and_posts_it(anchored, settings):
    anchor, result = publish(settings, registry=anchored)
    assert result.ok and anchor.seq == 15 and anchor.macs_from == 1 and anchor.valid(KEY)
    assert not anchor.signed(b"y" * 32).valid(KEY)
    assert [a.seq for a in read_anchors(settings.audit_anchor_path)] == [12, 15]  # appended, never rewritten
    posted = [json.loads(line) for line in settings.outbox_path.read_text().splitlines()]
    assert posted[-1]["kind"] == "report" and "row 15" in posted[-1]["text"]
    assert anchor.signature in json.dumps(posted[-1]["blocks"])  # the whole anchor, to be checked against later


def test_publish_alerts_and_anchors_nothing_when_the_log_was_rewritten(anchored, settings):
    with anchored.session() as s:
        s.execute(delete(McpAccessLog))
        s.execute(update(AuditChainHead).values(seq=0, head_hash=chain.GENESIS))
    with pytest.raises(AuditLogTampered) as caught:
        publish(settings, registry=anchored)
    assert caught.value.code == "audit_log_tampered" and "wiped" in str(caught.value)
    assert len(read_anchors(settings.audit_anchor_path)) == 1
    last = json.loads(settings.outbox_path.read_text().splitlines()[-1])
    assert last["kind"] == "alert" and "MCP access log tampered" in last["text"]


def test_without_a_key_the_head_is_published_unsigned_and_verify_warns(registry, settings):
    settings = settings.model_copy(update={"audit_signing_key": None})
    with registry.session() as s:
        chain.append(s, [_row(1)])
    anchor, result = publish(settings, registry=registry)
    assert anchor.signature == "" and result.ok
    assert any("RAGOPS_AUDIT_SIGNING_KEY" in w for w in result.warnings)
    assert json.loads(settings.outbox_path.read_text().splitlines()[-1])["kind"] == "alert"


def test_the_key_file_must_be_private(tmp_path):
    path = tmp_path / "audit.key"
    path.write_text("s" * 40 + "\n")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="mode 644.*chmod 600"):
        signing_key(Settings(audit_signing_key_file=path))
    path.chmod(0o600)
    assert signing_key(Settings(audit_signing_key_file=path)) == b"s" * 40
    with pytest.raises(ConfigError, match="cannot be read"):
        signing_key(Settings(audit_signing_key_file=tmp_path / "absent"))
    with pytest.raises(ConfigError, match="shorter than 16 bytes"):
        signing_key(Settings(audit_signing_key="short"))
    assert signing_key(Settings()) is None


def test_ragops_audit_verify_and_anchor(tmp_path, registry, settings, cli):
    """The commands through the CLI: anchor, then a wiped log fails verify with its kind, JSON and exit 7."""
    key = tmp_path / "audit.key"
    key.write_bytes(KEY)
    os.chmod(key, 0o600)
    env = {"RAGOPS_HOME": str(settings.home), "RAGOPS_DATABASE_URL": registry.url,
           "RAGOPS_AUDIT_SIGNING_KEY_FILE": str(key)}
    with registry.session() as s:
        chain.append(s, [_row(i) for i in range(3)], KEY)

    def run(*args, **extra):
        done = cli(None, "audit", *args, "--json", env=env | extra, check=False)
        return done.returncode, json.loads(done.stdout)

    code, body = run("anchor")
    assert code == 0 and body["anchor"]["seq"] == 3 and body["anchor"]["signature"]
    code, body = run("verify")
    assert code == 0 and body["ok"] and body["anchors"] == 1 and body["warnings"] == []
    with registry.session() as s:
        s.execute(delete(McpAccessLog))
        s.execute(update(AuditChainHead).values(seq=0, head_hash=chain.GENESIS))
    code, body = run("verify")
    assert code == 7 and body["error"]["code"] == "audit_log_tampered"
    assert [p["kind"] for p in body["problems"]] == ["wiped"]
    code, body = run("verify", RAGOPS_AUDIT_SIGNING_KEY_FILE="")  # no key: still checked, and it says so
    assert code == 7 and any("RAGOPS_AUDIT_SIGNING_KEY" in w for w in body["warnings"])
    key.chmod(0o644)
    code, body = run("verify")
    assert code != 0 and body["error"]["code"] == "config_error" and "chmod 600" in body["error"]["message"]
