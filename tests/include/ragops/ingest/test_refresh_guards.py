"""The refresh's shrinkage guards: documents and chunks lost, each against its baseline, and the override."""

import pytest
from sqlalchemy import select

from support import index_state
from ragops.errors import RefreshBlocked
from ragops.registry.models import IndexVersion, RefreshRun


def test_mass_delete_guard_leaves_the_index_untouched(refresher, settings, corpus):
    refresher.run()
    before = index_state(settings)
    for name in ("notes.txt", "page.html"):
        (corpus / name).unlink()
    with pytest.raises(RefreshBlocked, match="2 of 6"):
        refresher.run()
    assert index_state(settings) == before
    with refresher.registry.session() as s:
        assert s.scalars(select(RefreshRun.status).order_by(RefreshRun.id.desc())).first() == "blocked"
    report = refresher.run(allow_mass_delete=True)
    assert report.documents["deleted"] == 2


def test_small_deletions_that_add_up_are_refused(refresher, settings, corpus):
    for i in range(9):
        (corpus / f"extra{i}.md").write_text(f"# Extra {i}\n\nfiller text number {i}")
    refresher.run()  # 15 documents
    for i in range(3):
        (corpus / f"extra{i}.md").unlink()
    assert refresher.run().documents["deleted"] == 3  # 20%: allowed
    (corpus / "extra3.md").unlink()
    with pytest.raises(RefreshBlocked, match="fewer than the 15"):
        refresher.run()  # one more: 4 of 15 since the baseline, refused although it is 1 of 12 in this run
    assert refresher.run(allow_mass_delete=True).documents["deleted"] == 1
    for i in range(4, 6):
        (corpus / f"extra{i}.md").unlink()
    assert refresher.run().documents["deleted"] == 2  # the override reset the baseline to 11


# -- the guard counts lost content (issue 22, finding 4) -------------------------------------------------------------

def _long(n_paragraphs: int) -> str:
    return "# Guide\n\n" + "\n\n".join(f"Paragraph {i}. " + "content " * 90 for i in range(n_paragraphs))


def test_blanking_most_documents_is_refused(refresher, settings, corpus):
    """12 of 16 documents rewritten to "This page moved.": no document is deleted, but nearly all chunks would be."""
    for i in range(10):
        (corpus / f"extra{i}.md").write_text(_long(20))
    refresher.run()  # 16 documents
    before = index_state(settings)
    blanked = [corpus / f"extra{i}.md" for i in range(10)] + [corpus / "notes.txt", corpus / "page.html"]
    lost = {p.as_uri() for p in blanked}
    after = len([r for r in before if r[1] not in lost]) + len(blanked)
    for path in blanked:
        path.write_text("This page moved.")
    with pytest.raises(RefreshBlocked) as err:
        refresher.run()
    assert (f"from {len(before)} to {after} chunks (16 documents before, 16 after, 12 changed, 0 deleted)"
            in str(err.value)) and "--allow-mass-delete" in str(err.value)
    assert len(before) - after > 0.8 * len(before)  # the scenario: most of the content would go
    assert index_state(settings) == before
    with refresher.registry.session() as s:
        assert s.scalars(select(RefreshRun.status).order_by(RefreshRun.id.desc())).first() == "blocked"
    report = refresher.run(allow_mass_delete=True)
    assert report.documents["changed"] == 12 and len(index_state(settings)) == after
    with refresher.registry.session() as s:
        assert s.scalars(select(IndexVersion.chunk_baseline).where(IndexVersion.status == "live")).one() == after


def test_content_shrinking_a_little_passes_but_adds_up(refresher, settings, corpus):
    for i in range(4):
        (corpus / f"extra{i}.md").write_text(_long(10))
    refresher.run()
    n = len(index_state(settings))
    (corpus / "extra0.md").write_text(_long(4))  # an edit that drops 6 chunks
    assert refresher.run().documents["changed"] == 1
    assert len(index_state(settings)) == n - 6 and 6 <= 0.2 * n
    for i in (1, 2):
        (corpus / f"extra{i}.md").write_text(_long(5))  # 10 more: 16 since the baseline of n
    with pytest.raises(RefreshBlocked, match=f"fewer than the {n} chunks"):
        refresher.run()


# -- the index reconciles with the registry (finding 7) ----------------------------------------------------------
