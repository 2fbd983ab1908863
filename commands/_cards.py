"""Lists of related entities, as entity cards, ``deps`` and ``team`` show them: one description
gives both the blocks a person reads and the ``data`` a script reads, so the two always agree.

A ``Listing`` is a titled list of (entity ref, how it is related) pairs. ``listing_blocks`` turns
listings into ``ItemList`` blocks (each item carries its ref, so surfaces link it), cut to a
limit with the total shown and a hint naming the command that lists them all, and into
``data``: each list's refs whole under its key, and under ``lists`` every item as the text shows
it (label, detail), whole too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from callboard.catalog.model import Entity

from ._lookup import kind_of, name_of
from .api import Block, Deps, Item, ItemList, Person, Text

__all__ = ["Listing", "fields_data", "listing_blocks", "related", "person_email"]


@dataclass(frozen=True, slots=True)
class Listing:
    key: str  # the key in ``data`` (snake_case)
    title: str  # the list's title in the text
    entries: tuple[tuple[str, str | None], ...]  # (ref key, how it is related, when the list mixes ways)
    empty: str = "none"
    show_kind: bool = True  # False when the list holds one kind only (its title says which)
    people: bool = False  # the items are Users: shown by name, with their email
    always: bool = True  # shown even when empty (a card's main lists); else only when it has items
    more: str | None = None  # the command that lists them all, named under a list that was cut


def related(entity: Entity, *ways: tuple[str, str | None, str | None]) -> tuple[tuple[str, str | None], ...]:
    """``entity``'s related refs along ``ways`` — (relation type, kind the target must have or
    None, how to say it or None) — each ref once, the ways it is related joined."""
    found: dict[str, list[str]] = {}
    for rel_type, kind, how in ways:
        for key in entity.related(rel_type):
            if kind is not None and not key.startswith(kind + ":"):
                continue
            hows = found.setdefault(key, [])
            if how and how not in hows:
                hows.append(how)
    return tuple((key, ", ".join(hows) or None) for key, hows in found.items())


def person_email(person: Entity | None) -> str | None:
    profile = person.spec.get("profile") if person is not None else None
    email = profile.get("email") if isinstance(profile, dict) else None
    return email if isinstance(email, str) and email else None


def fields_data(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Fields as ``data``: each label in snake_case, its value as shown."""
    return {label.lower().replace(" ", "_").replace("-", "_"): value for label, value in pairs}


async def listing_blocks(
    deps: Deps, listings: Sequence[Listing], *, limit: int
) -> tuple[list[Block], dict[str, Any]]:
    """The blocks of ``listings``, each cut to ``limit`` items, and their ``data``."""
    index = deps.catalog.index
    people_keys = [k for listing in listings if listing.people for k, _ in listing.entries]
    people = await deps.catalog.get_many(people_keys) if people_keys else {}
    blocks: list[Block] = []
    data: dict[str, Any] = {}
    lists: dict[str, Any] = {}
    for listing in listings:
        items: list[Item] = []
        for key, how in listing.entries:
            known = key in index
            if listing.people and key.startswith("user:"):
                person = people.get(key)
                label = person.display_name if person is not None else name_of(key)
                email = person_email(person)
                parts = [email, how, None if known else "not in the catalog"]
                items.append(Item(label=label, ref=key, detail=" · ".join(p for p in parts if p) or None,
                                  person=Person(ref=key, name=label, email=email) if person is not None else None))
                continue
            parts = [kind_of(key) if listing.show_kind or listing.people else None, how,
                     None if known else "not in the catalog"]
            items.append(Item(label=name_of(key), ref=key, detail=" · ".join(p for p in parts if p) or None))
        data[listing.key] = [key for key, _ in listing.entries]
        lists[listing.key] = {
            "title": listing.title,
            "total": len(items),
            "items": [{"ref": i.ref, "label": i.label, "detail": i.detail,
                       **({"email": i.person.email if i.person else None} if listing.people else {})}
                      for i in items],
        }
        if not items and not listing.always:
            continue
        blocks.append(ItemList(title=listing.title, items=tuple(items[:limit]), total=len(items), empty=listing.empty))
        if len(items) > limit and listing.more:
            blocks.append(Text(text=f"{listing.title}: all {len(items)} with `{listing.more}`"))
    data["lists"] = lists
    return blocks, data
