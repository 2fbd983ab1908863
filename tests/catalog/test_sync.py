"""Sync semantics: delta only, removals, failed reads keep entities, conflicts, files counted once."""

from __future__ import annotations

from pathlib import Path

from .test_bad_input import GOOD, TEAM, _location


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


async def _graph_matches_storage(app) -> None:
    """The resident graph, kept current by the change feed, says what storage says."""
    assert app.catalog.graph is not None
    graph = app.catalog.graph
    app.catalog.graph = None
    try:
        for key in app.catalog.index.keys():
            stored = await app.catalog.get(key)
            assert stored is not None
            assert sorted(graph.relations(key)) == sorted(stored.relations), key
    finally:
        app.catalog.graph = graph


async def test_delta_semantics(tmp_path: Path, make_app, database_url: str) -> None:
    _write(tmp_path / "svc" / "catalog-info.yaml", GOOD.format(name="one") + "---\n" + GOOD.format(name="two"))
    _write(tmp_path / "org" / "catalog-info.yaml", TEAM)
    app = await make_app(database_url, resident=True)
    try:
        first = await app.sync((str(tmp_path),))
        assert (first.added, first.updated, first.removed) == (3, 0, 0)
        again = await app.sync((str(tmp_path),))
        assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 3)
        # one entity changes, one disappears
        _write(tmp_path / "svc" / "catalog-info.yaml", GOOD.format(name="one").replace("production", "deprecated"))
        changed = await app.sync((str(tmp_path),))
        assert (changed.added, changed.updated, changed.removed) == (0, 1, 1)
        assert "component:default/two" not in app.catalog.index
        one = await app.catalog.get("component:default/one")
        assert one is not None and one.spec["lifecycle"] == "deprecated"
        team = await app.catalog.get("group:default/team-a")
        assert team is not None and team.related("ownerOf") == ["component:default/one"]
        await _graph_matches_storage(app)
        # a read that fails keeps what the location had
        _write(tmp_path / "svc" / "catalog-info.yaml", "kind: [unclosed\n")
        broken = await app.sync((str(tmp_path),))
        assert broken.removed == 0 and len(broken.errors) == 1
        assert "component:default/one" in app.catalog.index
        assert await app.catalog.get("component:default/one") is not None
        # an entity that turns invalid keeps its last good version
        _write(tmp_path / "svc" / "catalog-info.yaml", GOOD.format(name="one").replace("  type: service\n", ""))
        invalid = await app.sync((str(tmp_path),))
        assert invalid.removed == 0 and invalid.errors[0].entity == "component:default/one"
        assert await app.catalog.get("component:default/one") is not None
        await _graph_matches_storage(app)
    finally:
        await app.close()


async def test_conflicting_ref_first_location_keeps_it(tmp_path: Path, make_app, database_url: str) -> None:
    _write(tmp_path / "a" / "catalog-info.yaml", GOOD.format(name="dup"))
    _write(tmp_path / "b" / "catalog-info.yaml", GOOD.format(name="dup").replace("team-a", "team-b"))
    app = await make_app(database_url)
    try:
        summary = await app.sync((str(tmp_path),))
        entity = await app.catalog.get("component:default/dup")
    finally:
        await app.close()
    assert entity is not None and entity.spec["owner"] == "team-a"
    (err,) = summary.errors
    assert err.name == "ConflictError" and err.file.endswith("b/catalog-info.yaml")
    assert "already defined by" in err.message


async def test_same_file_reached_twice_counts_once(tmp_path: Path, make_app, sqlite_url: str) -> None:
    _write(tmp_path / "catalog-info.yaml", _location("root", "./svc/catalog-info.yaml"))
    _write(tmp_path / "svc" / "catalog-info.yaml", GOOD.format(name="once"))
    app = await make_app(sqlite_url)
    try:
        summary = await app.sync((str(tmp_path),))
    finally:
        await app.close()
    assert not summary.errors
    assert summary.added == 2  # the Location entity and the component, each once
    assert summary.locations == 2


async def test_dropped_location_target_removes_its_entities(tmp_path: Path, make_app, sqlite_url: str) -> None:
    _write(tmp_path / "root.yaml", _location("root", "./a.yaml", "./b.yaml"))
    _write(tmp_path / "a.yaml", GOOD.format(name="from-a"))
    _write(tmp_path / "b.yaml", GOOD.format(name="from-b"))
    app = await make_app(sqlite_url)
    try:
        await app.sync((str(tmp_path / "root.yaml"),))
        assert "component:default/from-b" in app.catalog.index
        _write(tmp_path / "root.yaml", _location("root", "./a.yaml"))
        summary = await app.sync((str(tmp_path / "root.yaml"),))
        assert summary.removed == 1
        assert "component:default/from-b" not in app.catalog.index
        assert await app.catalog.get("component:default/from-b") is None
    finally:
        await app.close()


async def test_index_is_rebuilt_from_storage_at_start(tmp_path: Path, make_app, database_url: str) -> None:
    _write(tmp_path / "catalog-info.yaml", GOOD.format(name="persisted"))
    app = await make_app(database_url)
    try:
        await app.sync((str(tmp_path),))
    finally:
        await app.close()
    again = await make_app(database_url)
    try:
        assert "component:default/persisted" in again.catalog.index
        reply = await again.ask("owner persisted")
    finally:
        await again.close()
    assert reply.data["owners"][0]["ref"] == "group:default/team-a"


async def test_big_file_is_parsed_in_parallel_chunks(tmp_path: Path, make_app, sqlite_url: str) -> None:
    docs = [GOOD.format(name=f"svc-{i:05d}") + "  description: " + "x" * 400 + "\n" for i in range(9000)]
    docs.insert(4000, "apiVersion: v1\nkind: Component\nmetadata:\n  name: [broken\n")
    (tmp_path / "big.yaml").write_text("---\n".join(docs))
    assert (tmp_path / "big.yaml").stat().st_size > 4 * 1024 * 1024
    app = await make_app(sqlite_url)
    try:
        summary = await app.sync((str(tmp_path / "big.yaml"),))
    finally:
        await app.close()
    assert summary.added == 9000  # the broken document alone is lost, not the rest of its chunk
    (err,) = [e for e in summary.errors]
    # lines are counted across chunks; libyaml notices the unclosed "[" on the line after it
    assert err.line == sum(d.count("\n") for d in docs[:4000]) + 4000 + 5


async def test_only_changed_documents_are_parsed_again(tmp_path: Path, make_app, database_url: str) -> None:
    docs = [GOOD.format(name=f"svc-{i}") for i in range(50)]
    path = tmp_path / "catalog.yaml"
    path.write_text("---\n".join(docs))
    app = await make_app(database_url)
    try:
        await app.sync((str(path),))
        docs[10] = docs[10].replace("production", "deprecated")
        docs[20] = "# a comment line\n" + docs[20]
        path.write_text("---\n".join(docs))
        summary = await app.sync((str(path),))
        moved = await app.catalog.get("component:default/svc-30")
        changed = await app.catalog.get("component:default/svc-10")
    finally:
        await app.close()
    assert (summary.added, summary.updated, summary.removed, summary.unchanged) == (0, 1, 0, 49)
    assert changed is not None and changed.spec["lifecycle"] == "deprecated"
    assert moved is not None and moved.line == 30 * 9 + 1 + 1  # shifted by the comment line


async def test_a_catalog_path_that_cannot_be_read_keeps_its_entities(tmp_path: Path, make_app, sqlite_url: str) -> None:
    _write(tmp_path / "a" / "catalog-info.yaml", GOOD.format(name="from-a"))
    _write(tmp_path / "b" / "catalog-info.yaml", GOOD.format(name="from-b"))
    app = await make_app(sqlite_url)
    try:
        await app.sync((str(tmp_path / "a"), str(tmp_path / "b")))
        (tmp_path / "b" / "catalog-info.yaml").rename(tmp_path / "moved.yaml")
        (tmp_path / "b").rmdir()
        summary = await app.sync((str(tmp_path / "a"), str(tmp_path / "b")))
        assert summary.removed == 0 and summary.errors
        assert await app.catalog.get("component:default/from-b") is not None
    finally:
        await app.close()


async def test_a_root_listed_by_a_location_stays_a_root(tmp_path: Path, make_app, sqlite_url: str) -> None:
    _write(tmp_path / "services" / "catalog-info.yaml", GOOD.format(name="svc"))
    _write(tmp_path / "teams" / "catalog-info.yaml", _location("teams", "../services/catalog-info.yaml"))
    app = await make_app(sqlite_url)
    try:
        await app.sync((str(tmp_path),))
        _write(tmp_path / "teams" / "catalog-info.yaml", _location("teams"))
        await app.sync((str(tmp_path),))
        again = await app.sync(None)
        assert again.removed == 0
        assert await app.catalog.get("component:default/svc") is not None
    finally:
        await app.close()


async def test_an_optional_target_is_picked_up_when_it_appears(tmp_path: Path, make_app, sqlite_url: str) -> None:
    root = tmp_path / "root.yaml"
    root.write_text(_location("root", "./later.yaml").replace("spec:\n", "spec:\n  presence: optional\n"))
    app = await make_app(sqlite_url)
    try:
        first = await app.sync((str(root),))
        assert not first.errors
        _write(tmp_path / "later.yaml", GOOD.format(name="later"))
        await app.sync((str(root),))
        assert await app.catalog.get("component:default/later") is not None
    finally:
        await app.close()


async def test_a_file_listed_by_two_locations_survives_one_dropping_it(tmp_path: Path, make_app, sqlite_url: str) -> None:
    _write(tmp_path / "p.yaml", _location("p", "./r.yaml"))
    _write(tmp_path / "q.yaml", _location("q", "./r.yaml"))
    _write(tmp_path / "r.yaml", GOOD.format(name="svc-r"))
    roots = (str(tmp_path / "p.yaml"), str(tmp_path / "q.yaml"))  # r is first reached through p
    app = await make_app(sqlite_url)
    try:
        await app.sync(roots)
        _write(tmp_path / "p.yaml", _location("p"))
        await app.sync(roots)
        assert await app.catalog.get("component:default/svc-r") is not None
        _write(tmp_path / "r.yaml", GOOD.format(name="svc-r").replace("production", "deprecated"))
        again = await app.sync(roots)  # still followed through q
        assert again.updated == 1
    finally:
        await app.close()


async def test_indexes_are_back_after_a_load_into_an_empty_catalog(tmp_path: Path, make_app, database_url: str) -> None:
    from sqlalchemy import inspect

    _write(tmp_path / "catalog-info.yaml", GOOD.format(name="one"))
    app = await make_app(database_url)
    try:
        await app.sync((str(tmp_path),))
        async with app.engine.connect() as conn:
            names = await conn.run_sync(
                lambda c: {i["name"] for t in ("entities", "relations") for i in inspect(c).get_indexes(t)}
            )
    finally:
        await app.close()
    assert {"ix_relations_target", "ix_entities_location_key", "ix_entities_kind"} <= names


async def test_replicas_take_turns_and_follow_each_others_writes(tmp_path: Path, make_app, database_url: str) -> None:
    """Two processes on one database: syncs do not interleave, and each one's index and graph
    pick up what the other wrote the next time it syncs."""
    import asyncio

    _write(tmp_path / "svc" / "catalog-info.yaml", GOOD.format(name="one"))
    _write(tmp_path / "org" / "catalog-info.yaml", TEAM)
    first = await make_app(database_url, resident=True)
    second = await make_app(database_url, resident=True)
    try:
        a, b = await asyncio.gather(first.sync((str(tmp_path),)), second.sync((str(tmp_path),)))
        assert not a.errors and not b.errors
        assert sorted([a.added, b.added]) == [0, 2]  # one wrote, the other found it all unchanged
        for app in (first, second):
            assert "component:default/one" in app.catalog.index
            await _graph_matches_storage(app)
        # the first replica sees a new entity; the second has not synced since
        _write(tmp_path / "svc" / "catalog-info.yaml", GOOD.format(name="one") + "---\n" + GOOD.format(name="two"))
        assert (await first.sync((str(tmp_path),))).added == 1
        assert "component:default/two" not in second.catalog.index
        quiet = await second.sync((str(tmp_path),))
        assert (quiet.added, quiet.updated) == (0, 0)
        assert "component:default/two" in second.catalog.index
        team = await second.catalog.get("group:default/team-a")
        assert team is not None and sorted(team.related("ownerOf")) == ["component:default/one", "component:default/two"]
        await _graph_matches_storage(second)
        reply = await second.ask("owner two")
        assert reply.status.value == "ok" and reply.data["entity"] == "component:default/two"
    finally:
        await first.close()
        await second.close()
