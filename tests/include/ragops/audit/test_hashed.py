"""The mechanism shared by API keys and MCP tokens: random secrets, sha256 at rest, constant-time lookup, private
atomic files."""

import os
import stat
import threading

from ragops.audit.hashed import find_by_secret, hash_token, locked, new_secret, write_private


def test_secrets_are_random_prefixed_and_stored_as_sha256():
    a, b = new_secret("rgk_"), new_secret()
    assert a.startswith("rgk_") and len(a) > 40 and a != b
    assert hash_token("t") == "e3b98a4da31a127d4bde6e43033f66ba274cab0eb7eb1c70ec41402bf6273dd8"


def test_lookup_finds_the_entry_of_the_secret_only():
    entries = [("a", hash_token("sa")), ("b", hash_token("sb"))]
    assert find_by_secret("sb", entries, lambda e: e[1]) == ("b", hash_token("sb"))
    assert find_by_secret("guess", entries, lambda e: e[1]) is None
    assert find_by_secret("", [], lambda e: e[1]) is None


def test_writes_are_private_and_leave_no_temporary_file(tmp_path):
    path = tmp_path / "dir" / "secrets.yaml"
    write_private(path, "one\n")
    write_private(path, "two\n")
    assert path.read_text() == "two\n" and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["secrets.yaml"]


def test_the_lock_serializes_editors(tmp_path):
    path = tmp_path / "secrets.yaml"
    inside, order = threading.Event(), []

    def second():
        with locked(path):
            order.append("second")

    with locked(path):
        thread = threading.Thread(target=second)
        thread.start()
        inside.wait(0.2)  # give the second editor the chance to get in, which the lock must refuse
        order.append("first")
    thread.join(10)
    assert order == ["first", "second"]
