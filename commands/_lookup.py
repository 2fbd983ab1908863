"""Helpers every entity command shares: find the entity meant, or say why not."""

from __future__ import annotations

from collections.abc import Iterable

from callboard.catalog.model import Entity
from callboard.catalog.search import Candidate, normalize

from .api import Actions, Deps, Invocation, Item, ItemList, Reply, RunCommand, Status, Unanswered

__all__ = ["candidate_item", "describe_ref", "entity_from", "find_entity", "kind_of", "name_of", "resolve"]

_KIND_TITLES = {
    "api": "API",
    "component": "Component",
    "domain": "Domain",
    "group": "Group",
    "location": "Location",
    "resource": "Resource",
    "system": "System",
    "template": "Template",
    "user": "User",
}


def kind_of(key: str) -> str:
    kind = key.split(":", 1)[0]
    return _KIND_TITLES.get(kind, kind)


def name_of(key: str) -> str:
    """``payment-service`` for ``component:default/payment-service`` (namespace kept if not default)."""
    rest = key.split(":", 1)[-1]
    ns, _, name = rest.partition("/")
    return name if ns == "default" else rest


def describe_ref(key: str) -> str:
    return f"{kind_of(key)} {name_of(key)}"


def candidate_item(c: Candidate) -> Item:
    detail = kind_of(c.key)
    if c.title and c.title != c.name:
        detail += f" · {c.title}"
    return Item(label=name_of(c.key), ref=c.key, detail=detail)


async def entity_from(
    inv: Invocation, deps: Deps, *, usage: str, kinds: Iterable[str] | None = None
) -> tuple[Entity, str]:
    """The entity a command's arguments name, with the query as typed (``Unanswered`` otherwise)."""
    query = " ".join(inv.args).strip()
    if not query:
        raise Unanswered(Reply.notice(Status.USAGE, f"Usage: {usage}"))
    return await find_entity(deps, query, kinds=kinds, command=inv.command), query


async def find_entity(
    deps: Deps, query: str, *, kinds: Iterable[str] | None = None, command: str
) -> Entity:
    """The entity ``query`` names; ``Unanswered`` when it is unknown or ambiguous."""
    key = resolve(deps, query, kinds=kinds, command=command)
    entity = await deps.catalog.get(key)
    if entity is None:  # removed by a sync since the index answered
        raise Unanswered(Reply.notice(Status.NOT_FOUND, f'"{query}" was just removed from the catalog.'))
    return entity


def resolve(deps: Deps, query: str, *, kinds: Iterable[str] | None = None, command: str) -> str:
    """The key of the entity ``query`` names; ``Unanswered`` when it is unknown or ambiguous."""
    result = deps.catalog.search(query, kinds=kinds)
    match = result.match
    if match is not None:
        return match.key
    if not result.candidates:
        what = "/".join(_KIND_TITLES.get(k, k) for k in kinds) if kinds else "entity"
        raise Unanswered(Reply.notice(
            Status.NOT_FOUND,
            f'No {what} matches "{query}": nothing in the catalog is named like it. '
            f"`find <part of a name>` lists what is there.",
            data={"query": query, "candidates": []},
        ))
    items = tuple(candidate_item(c) for c in result.candidates)
    names = ", ".join(name_of(c.key) for c in result.candidates[:5])
    if len(result.candidates) == 1:
        title = f'No entity is named "{query}"; did you mean this one?'
        summary = f'No entity is named "{query}"; did you mean {names}?'
    else:
        title = f'"{query}" could mean several entities; which one?'
        summary = f'"{query}" is ambiguous: {names}'
    actions = tuple(RunCommand(label=name_of(c.key), command=f"{command} {c.key}") for c in result.candidates[:5])
    raise Unanswered(Reply(
        status=Status.AMBIGUOUS,
        command=command,
        blocks=(
            ItemList(title=title, items=items),
            Actions(actions=actions),
        ),
        summary=summary,
        data={
            "query": query,
            "candidates": [
                {"ref": c.key, "name": c.name, "title": c.title, "score": round(c.score, 1)}
                for c in result.candidates
            ],
        },
    ))


def typo_note(entity: Entity, query: str) -> str | None:
    """A note when the entity was found by a fuzzy match, so the asker can check it."""
    q = normalize(query)
    names = {normalize(n) for n in (entity.ref.name, entity.ref.key, f"{entity.ref.namespace}/{entity.ref.name}")}
    if entity.title:
        names.add(normalize(entity.title))
    if q in names or normalize(query.split(":", 1)[-1]) in names:
        return None  # as typed, but for case and separators ("edge gateway" for edge-gateway)
    return f'Showing {describe_ref(entity.ref.key)} for "{query}".'
