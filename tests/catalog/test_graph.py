"""The resident relation graph answers what storage would."""

from __future__ import annotations

from callboard.catalog.graph import RelationGraph
from callboard.catalog.model import Relation


def test_both_directions_and_replacement() -> None:
    g = RelationGraph()
    g.load([("component:default/a", "ownedBy", "group:default/t"), ("user:default/u", "memberOf", "group:default/t")])
    assert g.related("group:default/t", "ownerOf") == ["component:default/a"]
    assert g.related("group:default/t", "hasMember") == ["user:default/u"]
    assert Relation("component:default/a", "ownedBy", "group:default/t") in g.relations("component:default/a")
    g.replace("component:default/a", [("component:default/a", "ownedBy", "group:default/v")])
    assert g.related("group:default/t", "ownerOf") == []
    assert g.related("group:default/v", "ownerOf") == ["component:default/a"]
    g.drop("user:default/u")
    assert g.related("group:default/t", "hasMember") == []


def test_dropping_members_of_a_huge_group_is_fast() -> None:
    import time

    g = RelationGraph()
    g.load((f"component:default/c{i}", "ownedBy", "group:default/big") for i in range(50_000))
    started = time.perf_counter()
    for i in range(5_000):
        g.drop(f"component:default/c{i}")
    assert time.perf_counter() - started < 1
    assert len(g.related("group:default/big", "ownerOf")) == 45_000


def test_an_answer_kept_for_a_key_is_forgotten_when_the_graph_changes() -> None:
    """relations() keeps what it made (an owner group is asked for on every question); any add,
    drop or replace must show at once, and a caller changing its list must not change the next."""
    g = RelationGraph()
    g.add("component:default/a", "ownedBy", "group:default/team")
    first = g.relations("group:default/team")
    assert first == [Relation("group:default/team", "ownerOf", "component:default/a")]
    first.append(Relation("group:default/team", "ownerOf", "component:default/ghost"))
    assert len(g.relations("group:default/team")) == 1
    g.add("component:default/b", "ownedBy", "group:default/team")
    assert {r.target for r in g.relations("group:default/team")} == {"component:default/a", "component:default/b"}
    g.drop("component:default/a")
    assert [r.target for r in g.relations("group:default/team")] == ["component:default/b"]
    g.replace("component:default/b", [("component:default/b", "ownedBy", "group:default/other")])
    assert g.relations("group:default/team") == []
    assert g.relations("group:default/other") == [Relation("group:default/other", "ownerOf", "component:default/b")]
