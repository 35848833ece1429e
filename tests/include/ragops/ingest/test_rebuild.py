"""`ragops doctor --repair` on an unreadable index: a real LanceDB index in a tmp RAGOPS_HOME with a file cut short,
rebuilt from the registry and the sources into a new collection (issue 22, finding 6c)."""

import json
import shutil

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from ragops.errors import RefreshBlocked, RefreshConflict, StoreUnavailable
from ragops.index import open_store
from ragops.ingest import rebuild
from ragops.ingest.doctor import check, repair
from ragops.ingest.rebuild import RepairImpossible
from ragops.ingest.refresh import Refresher
from ragops.registry import Registry, registry_lock
from ragops.registry.models import IndexVersion, RefreshRun, Release

Q = {"question": "What blocks a mass delete?"}


def _truncate_data(settings, collection="chunks"):
    data = sorted((settings.lance_dir / f"{collection}.lance" / "data").glob("*.lance"))
    assert data
    with open(data[0], "r+b") as f:
        f.truncate(data[0].stat().st_size // 2)


def _versions(settings) -> list[tuple]:
    registry = Registry(settings.registry_url)
    with registry.session() as s:
        rows = [(v.id, v.collection, v.store_version, v.status)
                for v in s.scalars(select(IndexVersion).order_by(IndexVersion.id))]
    registry.dispose()
    return rows


def _contents(settings, collection) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for row in open_store(settings, collection).rows(["doc_uri", "text"]):
        out.setdefault(row["doc_uri"], set()).add(row["text"])
    return out


def _quarantined(settings) -> list:
    folder = settings.home / "quarantine" / "lance"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_a_truncated_index_is_rebuilt_into_a_new_collection_that_serving_switches_to(indexed, embedder):
    from ragops.answer.pipeline import AnswerService
    from serving.app import create_app

    before = _contents(indexed, "chunks")
    registry = Registry(indexed.registry_url)
    with registry.session() as s:  # a release that pins the collection, as a promoted candidate's does
        s.add(Release(name="pinned", index_version_id=_versions(indexed)[0][0], answer_config={}))
    service = AnswerService(indexed, embedder=embedder, rollout_ttl_s=0)  # reads the live row on every request
    with TestClient(create_app(indexed, service=service)) as client:
        assert client.post("/v1/search", json=Q).status_code == 200
        _truncate_data(indexed)
        service._retrievers.clear()  # as a restarted replica would: nothing of the index cached
        assert client.post("/v1/search", json=Q).status_code == 503

        found = check(indexed)
        assert not found.ok and found.unreadable["collection"] == "chunks"
        assert "doctor --repair" in found.problems()[0] and "failed to fill whole buffer" in found.unreadable["error"]

        fixed = repair(indexed, embedder=embedder)
        reply = client.post("/v1/search", json=Q)
    assert fixed.ok, fixed.problems()
    rebuilt = fixed.repaired["rebuild"]
    new = rebuilt["collection"]
    assert new != "chunks" and fixed.collection == new and fixed.documents == {"registry": 6, "index": 6}
    assert _contents(indexed, new) == before  # the same documents, chunk for chunk
    assert reply.status_code == 200 and "guide/refresh.md" in reply.json()["results"][0]["doc_uri"]
    # The damaged collection is kept, moved aside where the report says, and nothing was written into it.
    assert _quarantined(indexed) == [indexed.home / "quarantine" / "lance" / rebuilt["set_aside"].rsplit("/", 1)[1]]
    assert (_quarantined(indexed)[0] / "_versions").is_dir() and not (indexed.lance_dir / "chunks.lance").exists()
    versions = _versions(indexed)
    # the damaged collection's rows follow its files out of the index: no reader is ever sent there again
    assert [(v[1], v[3]) for v in versions] == [("chunks", "pruned"), (new, "live")]
    assert rebuilt["releases"] == ["pinned"]
    with registry.session() as s:
        assert s.scalar(select(Release.index_version_id).where(Release.name == "pinned")) == versions[1][0]
        run = s.get(RefreshRun, rebuilt["run_id"])
        assert run.status == "succeeded" and run.plan["kind"] == "repair"
        assert run.plan["replaces"] == {"index_version": versions[0][0], "collection": "chunks"}
    registry.dispose()
    # Refreshes go on into the rebuilt collection.
    again = Refresher(indexed, embedder=embedder).run()
    assert again.documents["unchanged"] == 6 and _versions(indexed)[-1][1] == new


@pytest.mark.parametrize("damage", ["missing data file", "truncated manifest"])
def test_other_damage_is_found_and_rebuilt(indexed, embedder, damage):
    folder = indexed.lance_dir / "chunks.lance"
    if damage == "missing data file":
        next((folder / "data").glob("*.lance")).unlink()
    else:
        for manifest in (folder / "_versions").glob("*.manifest"):
            manifest.write_bytes(manifest.read_bytes()[:100])
    assert check(indexed).unreadable is not None
    fixed = repair(indexed, embedder=embedder)
    assert fixed.ok and fixed.documents == {"registry": 6, "index": 6} and len(_quarantined(indexed)) == 1


def test_refresh_full_on_an_unreadable_index_names_the_repair(indexed, embedder):
    _truncate_data(indexed)
    with pytest.raises(StoreUnavailable, match=r"ragops doctor --repair"):
        Refresher(indexed, embedder=embedder).run(full=True)
    assert [v[3] for v in _versions(indexed)] == ["live"]


def test_a_repair_is_refused_while_another_run_holds_the_refresh_lease(indexed, embedder):
    _truncate_data(indexed)
    before = _versions(indexed)
    registry = Registry(indexed.registry_url)
    with registry_lock(registry, "refresh") as other:
        with pytest.raises(RefreshConflict, match=other.owner):
            repair(indexed, embedder=embedder)
    registry.dispose()
    assert _versions(indexed) == before
    assert [p.name for p in indexed.lance_dir.iterdir()] == ["chunks.lance"] and _quarantined(indexed) == []


def test_sources_gone_say_what_is_missing_and_leave_the_live_version(indexed_own_corpus, embedder, cli):
    settings = indexed_own_corpus
    _truncate_data(settings)
    before = _versions(settings)
    corpus = settings.home.parent / "corpus"
    (corpus / "notes.txt").unlink()
    (corpus / "ops.rst").unlink()

    found = cli(settings, "doctor", "--json", check=False)
    report = json.loads(found.stdout)
    assert found.returncode == 7 and report["error"]["code"] == "index_inconsistent"
    assert report["unreadable"]["collection"] == "chunks" and "doctor --repair" in report["error"]["message"]

    done = cli(settings, "doctor", "--repair", "--json", check=False)
    error = json.loads(done.stdout)["error"]
    assert done.returncode == 8 and error["code"] == "repair_impossible"
    assert "2 of the 6 documents" in error["message"] and (corpus / "notes.txt").as_uri() in error["message"]
    assert (corpus / "ops.rst").as_uri() in error["message"] and "unchanged" in error["message"]

    shutil.rmtree(corpus)
    with pytest.raises(RepairImpossible, match=r"cannot be read .* the 6 documents"):
        repair(settings, embedder=embedder)
    assert _versions(settings) == before and _quarantined(settings) == []
    assert [p.name for p in settings.lance_dir.iterdir()] == ["chunks.lance"]  # no half-built collection either
    registry = Registry(settings.registry_url)
    with registry.session() as s:
        assert set(s.scalars(select(RefreshRun.status)).all()) == {"succeeded", "failed"}
    registry.dispose()


def test_the_operator_may_rebuild_without_the_documents_the_source_lost(indexed_own_corpus, embedder):
    settings = indexed_own_corpus
    _truncate_data(settings)
    gone, empty = settings.home.parent / "corpus" / "notes.txt", settings.home.parent / "corpus" / "ops.rst"
    gone.unlink()
    empty.write_bytes(b"")  # no longer passes validation: quarantined, and its old chunks went with the damage
    fixed = repair(settings, embedder=embedder, allow_mass_delete=True)
    assert fixed.ok, fixed.problems()
    assert fixed.repaired["rebuild"]["dropped"] == [gone.as_uri(), empty.as_uri()]
    assert fixed.documents == {"registry": 4, "index": 4}
    assert [q["uri"] for q in fixed.repaired["rebuild"]["quarantine"]] == [empty.as_uri()]


def test_a_source_that_lost_content_since_the_last_refresh_is_held_to_the_shrinkage_guard(indexed_own_corpus, embedder):
    settings = indexed_own_corpus
    _truncate_data(settings)
    before = _versions(settings)
    corpus = settings.home.parent / "corpus"
    for name in ("guide/refresh.md", "guide/install.md"):  # every document still there, most of their content gone
        (corpus / name).write_text("# Moved\n\nThis page moved.\n")
    with pytest.raises(RefreshBlocked, match=r"shrinkage guard allows.*--allow-mass-delete.*unchanged"):
        repair(settings, embedder=embedder)
    assert _versions(settings) == before
    fixed = repair(settings, embedder=embedder, allow_mass_delete=True)
    assert fixed.ok and fixed.documents == {"registry": 6, "index": 6}


def test_a_rebuild_that_does_not_read_back_is_never_made_live(indexed, embedder, monkeypatch):
    _truncate_data(indexed)
    before = _versions(indexed)
    real = rebuild.read_error
    monkeypatch.setattr(rebuild, "read_error",  # the damaged collection reads as it does; the rebuilt one fails
                        lambda store: "cut short" if store.collection != "chunks" else real(store))
    with pytest.raises(StoreUnavailable, match="did not read back .*cut short.* live index is unchanged"):
        repair(indexed, embedder=embedder)
    assert _versions(indexed) == before and _quarantined(indexed) == []
    assert (indexed.lance_dir / "chunks.lance").exists()
