"""The delta planner as pure logic: stored states and what was read in, a plan out. No database."""

from __future__ import annotations

from callboard.catalog.model import CatalogError, EntityRef, ProcessedEntity, UnchangedDocument
from callboard.catalog.plan import KEEP, TAKE, WAIT, Holder, plan_batch, plan_removals
from callboard.storage.repo import EntityRow, EntityState

HERE = "file:/cat/a.yaml"
THERE = "file:/cat/b.yaml"


def entity(name: str, *, hash: str = "h1", line: int = 1, source_hash: str | None = "s1",
           raw: str | None = None, file: str = "/cat/a.yaml",
           relations: tuple[tuple[str, str, str], ...] = ()) -> ProcessedEntity:
    ref = EntityRef("Component", "default", name)
    return ProcessedEntity(
        ref=ref, title=name.title(), data_json=f'{{"name": "{name}"}}', raw_json=raw, relations=relations,
        file=file, line=line, hash=hash, source_hash=source_hash,
    )


def key(name: str) -> str:
    return f"component:default/{name}"


def state(hash: str = "h1", source_hash: str | None = "s1", line: int | None = 1, has_raw: bool = False) -> EntityState:
    return EntityState(hash, source_hash, line, has_raw)


def test_new_entities_are_added_with_named_rows_and_relations() -> None:
    rel = (key("a"), "ownedBy", "group:default/team")
    plan = plan_batch(HERE, [entity("a", relations=(rel, rel))], {})
    assert plan.n_added == 1 and plan.n_updated == 0 and plan.n_unchanged == 0
    (row,) = plan.added
    assert row == EntityRow(
        key=key("a"), kind="Component", namespace="default", name="a", title="A", location_key=HERE,
        file="/cat/a.yaml", line=1, hash="h1", source_hash="s1", data='{"name": "a"}', raw=None,
    )
    assert plan.added_relations == (rel,)  # duplicates emitted once
    assert plan.changed == () and plan.replaced == ()
    assert plan.index == ((key("a"), "a", "A"),)
    assert plan.new_keys == (key("a"),)
    assert plan.seen == {key("a")}


def test_unchanged_entity_is_not_written() -> None:
    plan = plan_batch(HERE, [entity("a")], {key("a"): state()})
    assert plan.n_unchanged == 1
    assert plan.added == plan.changed == ()
    assert plan.index == ()
    assert plan.defined == (entity("a"),)  # still defined here: its targets are followed


def test_changed_content_updates_in_place_and_replaces_relations() -> None:
    rel = (key("a"), "dependsOn", key("b"))
    plan = plan_batch(HERE, [entity("a", hash="h2", relations=(rel,))], {key("a"): state()}, feed_relations=True)
    assert plan.n_updated == 1 and plan.added == ()
    assert [r.hash for r in plan.changed] == ["h2"]
    assert plan.replaced == (key("a"),) and plan.changed_relations == (rel,)
    assert plan.emitted == ((key("a"), (rel,)),)
    assert plan.new_keys == ()  # it was here already


def test_same_content_new_line_or_text_is_rewritten_without_relations() -> None:
    plan = plan_batch(HERE, [entity("a", line=7, source_hash="s2")], {key("a"): state()})
    assert plan.n_unchanged == 1
    assert [(r.line, r.source_hash) for r in plan.changed] == [(7, "s2")]
    assert plan.replaced == () and plan.index == ()


def test_unchanged_document_counts_and_moves_its_line() -> None:
    stored = {key("a"): state(line=1), key("b"): state(line=5)}
    plan = plan_batch(HERE, [UnchangedDocument(key("a"), 3), UnchangedDocument(key("b"), 5)], stored)
    assert plan.n_unchanged == 2
    assert plan.line_moves == ((key("a"), 3),)
    assert plan.seen == {key("a"), key("b")}


def test_duplicate_ref_in_one_location_keeps_the_first() -> None:
    plan = plan_batch(HERE, [entity("a", line=1), entity("a", line=9, hash="h2")], {})
    assert [r.line for r in plan.added] == [1]
    (err,) = plan.errors
    assert err.name == "ConflictError" and err.line == 9 and err.location == HERE
    assert "defined twice in this file" in err.message


def test_duplicate_across_batches_of_one_read() -> None:
    plan = plan_batch(HERE, [entity("a")], {}, seen={key("a")})
    assert plan.added == () and plan.errors[0].name == "ConflictError"


def test_duplicate_ref_from_two_locations_the_holder_keeps_it() -> None:
    plan = plan_batch(HERE, [entity("a")], {}, holders={key("a"): Holder(THERE, KEEP)})
    assert plan.added == plan.changed == () and plan.defined == ()
    (err,) = plan.errors
    assert err.name == "ConflictError" and err.entity == key("a")
    assert "already defined by /cat/b.yaml" in err.message
    assert key("a") not in plan.seen  # not this location's: never removed from here either


def test_duplicate_ref_from_a_location_not_read_yet_waits() -> None:
    plan = plan_batch(HERE, [entity("a")], {}, holders={key("a"): Holder(THERE, WAIT)})
    assert plan.added == plan.changed == () and plan.errors == ()
    (claim,) = plan.waiting
    assert claim.holder == THERE and claim.item.key == key("a")


def test_entity_moving_between_locations_is_taken_over_in_place() -> None:
    moving = {key("a"): state(hash="h1", line=4)}
    plan = plan_batch(HERE, [entity("a", hash="h1", line=2)], {},
                      holders={key("a"): Holder(THERE, TAKE)}, moving=moving)
    # an UPDATE of the existing row (never a delete then insert): the entity exists throughout
    assert plan.added == ()
    assert [(r.key, r.location_key, r.line) for r in plan.changed] == [(key("a"), HERE, 2)]
    assert plan.taken == (key("a"),)
    assert plan.n_unchanged == 1  # same content: not counted as a change
    assert plan.new_keys == (key("a"),)


def test_entity_moving_with_new_content_counts_as_updated() -> None:
    plan = plan_batch(HERE, [entity("a", hash="h2")], {},
                      holders={key("a"): Holder(THERE, TAKE)}, moving={key("a"): state()})
    assert plan.n_updated == 1 and plan.replaced == (key("a"),) and plan.taken == (key("a"),)


def test_take_over_of_an_entity_no_longer_stored_is_an_insert() -> None:
    plan = plan_batch(HERE, [entity("a")], {}, holders={key("a"): Holder(THERE, TAKE)}, moving={})
    assert [r.key for r in plan.added] == [key("a")] and plan.taken == () and plan.new_keys == (key("a"),)


def test_invalid_entity_keeps_its_last_good_version() -> None:
    bad = CatalogError(file="/cat/a.yaml", line=3, entity=key("a"), message="spec.owner is missing")
    plan = plan_batch(HERE, [bad], {key("a"): state()})
    assert plan.keep == {key("a")} and not plan.parse_failed
    assert plan.errors == (bad,)
    assert plan_removals({key("a"), key("b")}, plan.seen, plan.keep, parse_failed=False) == {key("b")}


def test_failed_source_removes_nothing() -> None:
    unreadable = CatalogError(file="/cat/a.yaml", message="YAML error at line 4")
    plan = plan_batch(HERE, [unreadable], {key("a"): state(), key("b"): state()})
    assert plan.parse_failed
    assert plan_removals({key("a"), key("b")}, plan.seen, plan.keep, parse_failed=True) == frozenset()


def test_entity_no_longer_listed_is_removed() -> None:
    plan = plan_batch(HERE, [entity("a")], {key("a"): state(), key("b"): state()})
    assert plan_removals({key("a"), key("b")}, plan.seen, plan.keep, parse_failed=plan.parse_failed) == {key("b")}


def test_planning_does_not_touch_its_inputs() -> None:
    stored = {key("a"): state()}
    seen = {key("z")}
    plan_batch(HERE, [entity("a", hash="h2"), entity("b")], stored, seen=seen)
    assert stored == {key("a"): state()} and seen == {key("z")}
