"""A server's entity reads (the resident graph's relations, made once) give what storage gives."""

from __future__ import annotations

from pathlib import Path

from callboard.catalog.graph import RelationGraph
from callboard.catalog.model import Relation

# relations stated from both ends (dependsOn/dependencyOf, memberOf/members) and twice from one
# (a list naming its target twice): each must come out once, in (type, target) order
CATALOG = """apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: a
spec:
  type: service
  lifecycle: production
  owner: team
  dependsOn: [component:b, resource:db, component:b]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: b
spec:
  type: service
  lifecycle: production
  owner: team
  dependencyOf: [component:a]
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: db
spec:
  type: database
  owner: group:team
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: u
spec:
  memberOf: [team]
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: v
spec:
  memberOf: [team]
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team
spec:
  type: team
  members: [u]
  children: [sub]
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: sub
spec:
  type: team
  parent: team
  children: []
"""


async def test_resident_reads_equal_storage_reads(tmp_path: Path, make_app, sqlite_url: str) -> None:
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "catalog-info.yaml").write_text(CATALOG)
    app = await make_app(sqlite_url, resident=True)
    try:
        summary = await app.sync((str(tmp_path / "cat"),))
        assert not summary.errors, summary.errors
        catalog = app.catalog
        graph = catalog.graph
        assert graph is not None
        keys = sorted(catalog.index.keys())
        assert len(keys) == 7
        resident = {k: await catalog.get(k) for k in keys}
        with_owner = {k: await catalog.get_with(k, "ownedBy") for k in keys}
        with_members = {k: await catalog.get_with(k, "hasMember") for k in keys}
        many = await catalog.get_many([*keys, "component:default/nothing", keys[0]], relations=True)
        catalog.graph = None  # the same reads from storage
        try:
            for k in keys:
                stored = await catalog.get(k)
                assert stored is not None
                assert resident[k] == stored, k
                assert many[k] == stored, k
                assert with_owner[k] == await catalog.get_with(k, "ownedBy"), k
                assert with_members[k] == await catalog.get_with(k, "hasMember"), k
                assert list(stored.relations) == sorted(set(stored.relations), key=lambda r: (r.type, r.target))
            assert list(many) == keys
        finally:
            catalog.graph = graph
        team = resident["group:default/team"]
        assert team is not None
        assert [(r.type, r.target) for r in team.relations] == [
            ("hasMember", "user:default/u"),
            ("hasMember", "user:default/v"),
            ("ownerOf", "component:default/a"),
            ("ownerOf", "component:default/b"),
            ("ownerOf", "resource:default/db"),
            ("parentOf", "group:default/sub"),
        ]
        a = resident["component:default/a"]
        assert a is not None and a.related("dependsOn") == ["component:default/b", "resource:default/db"]
        assert len(a.relations) == len(set(a.relations))
    finally:
        await app.close()


def test_stitched_relations_are_each_once_in_order_and_follow_every_change() -> None:
    """What the graph keeps for a key is what Entity.relations holds; any add, drop or replace shows."""
    g = RelationGraph()
    g.add("component:default/a", "dependsOn", "component:default/b")
    g.add("component:default/b", "dependencyOf", "component:default/a")  # the same edge, from its other end
    g.add("component:default/a", "ownedBy", "group:default/t")
    g.add("component:default/a", "ownedBy", "group:default/t")  # emitted twice
    g.add("component:default/a", "consumesApi", "api:default/x")
    expected = (
        Relation("component:default/a", "consumesApi", "api:default/x"),
        Relation("component:default/a", "dependsOn", "component:default/b"),
        Relation("component:default/a", "ownedBy", "group:default/t"),
    )
    assert g.stitched("component:default/a") == expected
    assert g.stitched("component:default/a") is g.stitched("component:default/a")  # kept
    assert g.relations("component:default/a") == list(expected)
    assert g.stitched("component:default/b") == (Relation("component:default/b", "dependencyOf", "component:default/a"),)
    assert g.stitched("component:default/nothing") == ()
    g.add("component:default/c", "dependencyOf", "component:default/a")
    assert [r.target for r in g.stitched("component:default/a") if r.type == "dependsOn"] == [
        "component:default/b", "component:default/c"]
    g.drop("component:default/a")  # b's dependencyOf still says a dependsOn b
    assert g.stitched("component:default/a") == (
        Relation("component:default/a", "dependsOn", "component:default/b"),
        Relation("component:default/a", "dependsOn", "component:default/c"),
    )
    g.replace("component:default/b", [])
    assert g.stitched("component:default/a") == (Relation("component:default/a", "dependsOn", "component:default/c"),)
    assert g.stitched("component:default/b") == ()
