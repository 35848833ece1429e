"""The local change journal: what a scan logs, and a reader that answers only what it can vouch for."""

import os
import time

import pytest

from ragops.sources import Source
from ragops.sources.feed import FeedGap, LocalJournal

LATER = time.time() + 3600  # scans "an hour later": no file is racy unless a test says so


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "kb"
    root.mkdir()
    for name in ("a.md", "b.md", "c.md"):
        (root / name).write_text(f"# {name}\n\ntext of {name}\n")
    return root


@pytest.fixture
def journal(folder, tmp_path):
    return LocalJournal(tmp_path / "feed", Source(folder.as_uri()))


def uri(folder, name):
    return (folder / name).as_uri()


def test_a_cursor_reads_only_what_was_logged_after_it(journal, folder):
    journal.scan(now=LATER)
    cursor = journal.head()
    (folder / "a.md").write_text("# a\n\nedited\n")
    (folder / "c.md").unlink()
    journal.scan(now=LATER)
    changes = journal.changes(cursor)
    assert set(changes.put) == {uri(folder, "a.md")} and changes.deleted == {uri(folder, "c.md")}
    assert changes.scanned_at == LATER
    assert journal.changes(changes.cursor).put == {} and journal.changes(changes.cursor).entries == 0


def test_a_rename_is_a_deletion_and_a_put_and_the_last_entry_wins(journal, folder):
    journal.scan(now=LATER)
    cursor = journal.head()
    os.rename(folder / "b.md", folder / "d.md")
    journal.scan(now=LATER)
    (folder / "b.md").write_text("# b again\n")
    journal.scan(now=LATER)
    changes = journal.changes(cursor)
    assert set(changes.put) == {uri(folder, "d.md"), uri(folder, "b.md")} and changes.deleted == set()


def test_an_edit_that_restores_the_mtime_is_still_seen(journal, folder):
    path = folder / "a.md"
    journal.scan(now=LATER)
    cursor = journal.head()
    before = os.stat(path)
    time.sleep(0.01)  # a different ctime tick; the assertion is on what is logged, not on time
    path.write_text("# a\n\nsame size?\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    journal.scan(now=LATER)
    assert uri(folder, "a.md") in journal.changes(cursor).put


def test_a_file_modified_during_a_scan_is_logged_again_at_the_next(journal, folder):
    journal.scan(now=LATER)
    cursor = journal.head()
    (folder / "a.md").write_text("# a\n\nedited\n")
    journal.scan(now=os.stat(folder / "a.md").st_mtime)  # the same instant: racy
    first = journal.changes(cursor)
    journal.scan(now=LATER)
    assert uri(folder, "a.md") in first.put and uri(folder, "a.md") in journal.changes(first.cursor).put
    journal.scan(now=LATER)  # settled now: not logged a third time
    assert journal.changes(journal.changes(first.cursor).cursor).put == {}


@pytest.mark.parametrize("cursor, says", [
    (None, "no cursor"),
    ("not a cursor", "corrupt"),
    ("{epoch}:1:{inside}", "does not point at an entry"),
    ("{epoch}:1:999999999", "outside the journal"),
    ("0123456789abcdef:1:40", "replaced"),
])
def test_a_cursor_it_cannot_vouch_for_is_a_gap_never_a_partial_answer(journal, folder, cursor, says):
    journal.scan(now=LATER)
    epoch = journal.head().split(":")[0]
    inside = len(journal.journal.read_text().splitlines()[0]) + 5  # within the first entry
    with pytest.raises(FeedGap, match=says):
        journal.changes(cursor.format(epoch=epoch, inside=inside) if cursor else cursor)


def test_a_damaged_or_lost_journal_is_a_gap(journal, folder):
    journal.scan(now=LATER)
    cursor = journal.head()
    (folder / "a.md").write_text("# a\n\nedited\n")
    journal.scan(now=LATER)
    head, tail = journal.journal.read_text().rsplit('"op": "put"', 1)  # the entry after the cursor
    journal.journal.write_text(head + '"op": "pu' + tail)
    with pytest.raises(FeedGap, match="damaged"):
        journal.changes(cursor)
    journal.journal.unlink()
    with pytest.raises(FeedGap, match="does not exist"):
        journal.changes(cursor)
    journal.scan(now=LATER)  # a new journal: a new epoch, so the old cursor is stale
    with pytest.raises(FeedGap, match="replaced"):
        journal.changes(cursor)


def test_an_entry_still_being_written_is_left_for_the_next_read(journal, folder):
    journal.scan(now=LATER)
    cursor = journal.head()
    with open(journal.journal, "a") as f:
        f.write('{"seq": 99, "op": "put", "uri": "file:///half')  # no newline yet
    changes = journal.changes(cursor)
    assert changes.entries == 0 and changes.cursor == cursor


def test_an_edit_behind_a_symlink_is_seen_on_the_link(journal, folder):
    (folder / "real").mkdir()
    (folder / "real" / "target.bin").write_text("first\n")  # not a document itself: only the link is
    os.symlink(folder / "real" / "target.bin", folder / "link.md")
    journal.scan(now=LATER)
    cursor = journal.head()
    (folder / "real" / "target.bin").write_text("second, longer\n")
    journal.scan(now=LATER)
    assert uri(folder, "link.md") in journal.changes(cursor).put


def test_a_journal_cut_by_a_crash_is_started_anew_never_appended_to(journal, folder):
    journal.scan(now=LATER)
    cursor = journal.head()
    with open(journal.journal, "a") as f:
        f.write('{"seq": 5, "op": "put", "uri": "fi')  # the writer died mid-entry
    (folder / "a.md").write_text("# a\n\nedited\n")
    journal.scan(now=LATER)  # no error: a new journal
    with pytest.raises(FeedGap, match="replaced"):
        journal.changes(cursor)
    fresh = journal.head()
    (folder / "b.md").unlink()
    journal.scan(now=LATER)
    assert journal.changes(fresh).deleted == {uri(folder, "b.md")}
