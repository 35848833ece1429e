"""One retention policy on both backends: what a release, the rollout or the rollback window can reach is kept, the
rest is pruned, and the registry follows; `ragops doctor` finds and repairs rows that name vanished versions."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from ragops.index import open_catalog
from ragops.index.backends import close_all, use_weaviate_client
from ragops.ingest.doctor import check, repair
from ragops.ingest.refresh import Refresher
from ragops.ingest.retention import check_versions, enforce, repair_versions
from ragops.registry import Registry
from ragops.registry.db import resolve_index_version
from ragops.registry.models import IndexVersion, RefreshRun, Release, RolloutState
from ragops.releases.records import ReleaseError, create_release

POLICY = {"retention_days": 0.0, "retention_min_versions": 2}  # no window: only the newest two and what is pinned


def _refresh(cfg, corpus, n: int) -> int:
    (corpus / "notes.txt").write_text(f"# Slack\n\nEdit number {n} of the notes.\n")
    return Refresher(cfg).run().index_version


def _rows(registry) -> dict[int, tuple[str, int]]:
    with registry.session() as s:
        return {v.id: (v.status, v.store_version) for v in s.scalars(select(IndexVersion))}


def _pin_as_rollback_target(registry, version_id: int) -> None:
    """The rollout's previous stable release pins `version_id`: a rollback can still reach it."""
    with registry.session() as s:
        release = Release(name=f"stable-{version_id}", index_version_id=version_id, created_by="test")
        s.add(release)
        s.flush()
        release.created_at -= timedelta(days=400)  # outside any window: only the rollout keeps it
        s.merge(RolloutState(id=1, stable_release_id=None, previous_stable_release_id=release.id, status="promoted"))


@pytest.fixture
def on_weaviate(tiny_remote_settings):
    from weaviate_doubles import ClientDouble

    client = ClientDouble()
    use_weaviate_client(lambda: client)
    yield tiny_remote_settings.model_copy(update={"store": "weaviate", **POLICY}), client
    close_all()


def test_weaviate_prunes_exactly_what_nothing_reaches_and_the_registry_follows(on_weaviate, corpus):
    cfg, client = on_weaviate
    registry = Registry(cfg.registry_url)
    first, second = _refresh(cfg, corpus, 1), _refresh(cfg, corpus, 2)
    _pin_as_rollback_target(registry, second)
    later = [_refresh(cfg, corpus, n) for n in (3, 4, 5)]
    rows = _rows(registry)
    assert [rows[i][1] for i in (first, second, *later)] == [1, 2, 3, 4, 5]
    assert {i for i, (status, _) in rows.items() if status == "pruned"} == {first, later[0]}
    assert rows[second][0] == "retired" and rows[later[-1]][0] == "live"
    assert client.deleted == ["Ragops_chunks_v1", "Ragops_chunks_v3"]  # the pinned v2 and the newest two stay
    assert open_catalog(cfg).versions("chunks") == [2, 4, 5]
    with registry.session() as s:  # a release on a pruned version reads the newest version of its collection
        assert resolve_index_version(s, first).id == later[-1]
    with pytest.raises(ReleaseError, match="pruned by the retention policy"):
        create_release(registry, "too-old", first, {}, "test")
    assert check_versions(cfg, registry).ok


def test_a_prefix_keeps_two_deployments_on_one_weaviate_apart(on_weaviate, corpus):
    cfg, client = on_weaviate
    client.names |= {"Other_chunks_v1", "Other_chunks_v2", "Other_live"}  # another deployment's versions
    for n in range(4):
        _refresh(cfg, corpus, n)
    assert {"Other_chunks_v1", "Other_chunks_v2"} <= client.names and not any("Other" in d for d in client.deleted)
    blue = cfg.model_copy(update={"weaviate_prefix": "Blue"})
    close_all()
    use_weaviate_client(lambda: client)
    _refresh(blue, corpus, 9)
    assert client.alias.targets == {"Ragops_live": "Ragops_chunks_v4", "Blue_live": "Blue_chunks_v1"}


def test_lancedb_prunes_exactly_what_nothing_reaches_and_the_registry_follows(tiny_remote_settings, corpus):
    """The same keep set as Weaviate's, not an age: a version newer than a pinned one goes when nothing reaches it."""
    cfg = tiny_remote_settings.model_copy(update=POLICY)
    registry = Registry(cfg.registry_url)
    first, second = _refresh(cfg, corpus, 1), _refresh(cfg, corpus, 2)
    _pin_as_rollback_target(registry, second)
    later = [_refresh(cfg, corpus, n) for n in (3, 4, 5)]
    rows = _rows(registry)
    assert {i for i, (status, _) in rows.items() if status == "pruned"} == {first, later[0]}
    assert rows[second][0] == "retired" and rows[later[-1]][0] == "live"
    catalog = open_catalog(cfg)
    held = set(catalog.versions("chunks"))
    kept = {rows[i][1] for i in (second, *later[1:])}
    assert kept <= held and not {rows[first][1], rows[later[0]][1]} & held
    assert set(catalog.kept_tags("chunks").values()) - kept <= {max(held)}  # and Lance's newest, if not a row's
    store = catalog.open("chunks", rows[second][1])  # the rollback target still reads whole
    with registry.session() as s:
        assert store.count() == s.get(IndexVersion, second).n_chunks > 0
    assert check_versions(cfg, registry).ok


def test_a_version_a_release_pins_survives_a_cleanup_by_age(tiny_remote_settings, corpus):
    """An operator's `optimize(cleanup_older_than=0)` cannot delete a kept version: Lance refuses it for the tag."""
    cfg = tiny_remote_settings.model_copy(update=POLICY)
    registry = Registry(cfg.registry_url)
    pinned = _refresh(cfg, corpus, 1)
    _pin_as_rollback_target(registry, pinned)
    for n in (2, 3, 4):
        _refresh(cfg, corpus, n)
    version = _rows(registry)[pinned][1]
    table = open_catalog(cfg).open("chunks")._tbl
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="tagged version"):
        table.optimize(cleanup_older_than=timedelta(0))
    assert version in open_catalog(cfg).versions("chunks")
    with registry.session() as s:  # the release is given up: the next prune removes the version and its tag
        s.merge(RolloutState(id=1, stable_release_id=None, previous_stable_release_id=None, status="promoted"))
    enforce(cfg, registry, "chunks")
    assert version not in open_catalog(cfg).versions("chunks") and _rows(registry)[pinned][0] == "pruned"
    assert version not in open_catalog(cfg).kept_tags("chunks").values()


def test_the_policy_keeps_the_rollback_window(on_weaviate, corpus):
    cfg, client = on_weaviate
    cfg = cfg.model_copy(update={"retention_days": 30.0})
    ids = [_refresh(cfg, corpus, n) for n in range(5)]
    assert all(status != "pruned" for status, _ in _rows(Registry(cfg.registry_url)).values())
    assert client.deleted == [] and len(ids) == 5
    assert enforce(cfg.model_copy(update=POLICY), Registry(cfg.registry_url), "chunks").pruned == [1, 2, 3]


def test_doctor_reports_rows_naming_vanished_versions_and_repairs_them(tiny_remote_settings, corpus):
    cfg = tiny_remote_settings
    refresher = Refresher(cfg)
    refresher.run()
    registry = refresher.registry
    with registry.session() as s:  # a version deleted by hand, and a candidate collection dropped outside ragops
        s.add_all([IndexVersion(store="lance", collection="chunks", store_version=999, embedding_model="tiny",
                                n_documents=1, n_chunks=1, status="retired"),
                   IndexVersion(store="lance", collection="blue", store_version=1, embedding_model="tiny",
                                n_documents=1, n_chunks=1, status="candidate")])
    report = check(cfg, registry)
    assert not report.ok and report.versions["count"] == 2 and not report.versions["live_missing"]
    assert any("no longer holds (chunks v999, blue v1)" in p for p in report.problems())
    fixed = repair_versions(cfg, registry)
    assert fixed.ok and len(fixed.repaired["rows_marked"]) == 2
    statuses = sorted(status for status, _ in _rows(registry).values())
    assert statuses == ["live", "pruned", "pruned"]
    assert check(cfg, registry).ok


def test_doctor_repair_includes_the_version_repair(tiny_remote_settings, corpus):
    refresher = Refresher(tiny_remote_settings)
    refresher.run()
    with refresher.registry.session() as s:
        s.add(IndexVersion(store="lance", collection="chunks", store_version=999, embedding_model="tiny",
                           n_documents=1, n_chunks=1, status="retired"))
    after = repair(tiny_remote_settings, registry=refresher.registry)
    assert after.ok and after.repaired["versions"]["before"] == 1


def test_a_refresh_prunes_every_collection_and_a_failed_prune_never_fails_it(on_weaviate, corpus, monkeypatch):
    cfg, client = on_weaviate
    registry = Registry(cfg.registry_url)
    with registry.session() as s:  # a retired blue/green collection with versions nothing reaches any more
        for version in (1, 2, 3):
            s.add(IndexVersion(store="weaviate", collection="blue", store_version=version, embedding_model="tiny",
                               n_documents=1, n_chunks=1, status="retired"))
    client.names |= {"Ragops_blue_v1", "Ragops_blue_v2", "Ragops_blue_v3"}
    _refresh(cfg, corpus, 1)
    assert "Ragops_blue_v1" in client.deleted and open_catalog(cfg).versions("blue") == [2, 3]

    def refuse(name):
        from weaviate.exceptions import WeaviateBaseError

        raise WeaviateBaseError("the server refused the delete")

    monkeypatch.setattr(client, "delete", refuse)
    latest = [_refresh(cfg, corpus, n) for n in (2, 3, 4)]  # each one would prune: every prune fails
    rows = _rows(registry)
    assert rows[latest[-1]][0] == "live" and rows[latest[0]][0] == "retired"  # the refreshes stand, nothing is marked
    with registry.session() as s:
        assert {r.status for r in s.scalars(select(RefreshRun))} == {"succeeded"}


def test_ragops_doctor_exits_7_naming_the_vanished_versions(tiny_remote_settings, corpus, cli):
    import json

    refresher = Refresher(tiny_remote_settings)
    refresher.run()
    assert cli(tiny_remote_settings, "doctor", "--json").returncode == 0
    with refresher.registry.session() as s:
        s.add(IndexVersion(store="lance", collection="chunks", store_version=999, embedding_model="tiny",
                           n_documents=1, n_chunks=1, status="retired"))
    refresher.registry.dispose()
    found = cli(tiny_remote_settings, "doctor", "--json", check=False)
    report = json.loads(found.stdout)
    assert found.returncode == 7 and report["versions"]["missing"][0]["store_version"] == 999
    assert "no longer holds (chunks v999)" in report["error"]["message"] and "--repair" in report["error"]["message"]


# -- attacked after landing (docs/reliability.md, "Issues 23 and 24: attacked after landing") --------------------------
def test_a_release_made_while_the_keep_set_is_computed_keeps_its_version(on_weaviate, corpus, monkeypatch):
    """The race between computing what to keep and pruning: a release created in between (or a rollout started
    on it) must keep its version, and the registry must never name a deleted version as releasable."""
    import ragops.ingest.retention as retention

    cfg, client = on_weaviate
    registry = Registry(cfg.registry_url)
    ids = [_refresh(cfg.model_copy(update={"retention_min_versions": 9}), corpus, n) for n in range(4)]
    computed = retention.reachable

    def then_a_release_is_made(session, settings, collection, now=None, **again):
        keep = computed(session, settings, collection, now, **again)
        if not again:
            create_release(registry, "late", ids[0], {}, "someone")  # between the keep set and the prune
        return keep

    monkeypatch.setattr(retention, "reachable", then_a_release_is_made)
    result = enforce(cfg, registry, "chunks")
    rows = _rows(registry)
    assert rows[ids[0]][0] != "pruned" and rows[ids[0]][1] in open_catalog(cfg).versions("chunks")
    assert result.pruned == [rows[ids[1]][1]] and rows[ids[1]][0] == "pruned"
    assert check_versions(cfg, registry).ok
    with pytest.raises(ReleaseError, match="pruned"):
        create_release(registry, "too-late", ids[1], {}, "someone")


def test_a_clock_running_ahead_of_the_registrys_prunes_nothing(on_weaviate, corpus, monkeypatch):
    """A host whose clock runs days ahead would see every release and version as outside the rollback window."""
    import ragops.ingest.retention as retention
    from ragops.errors import RagopsError

    cfg, client = on_weaviate
    cfg = cfg.model_copy(update={"retention_days": 30.0})
    registry = Registry(cfg.registry_url)
    ids = [_refresh(cfg, corpus, n) for n in range(4)]
    monkeypatch.setattr(retention, "database_now", lambda session: retention.datetime.now(retention.timezone.utc)
                        - timedelta(days=40))
    with pytest.raises(RagopsError, match="clock"):
        enforce(cfg, registry, "chunks")
    assert retention.enforce_all(cfg, registry, quiet=True) == {}
    assert client.deleted == [] and all(status != "pruned" for status, _ in _rows(registry).values()) and len(ids) == 4
