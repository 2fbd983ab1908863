"""``deps <entity>``: what it depends on, and what depends on it — for every kind.

A component depends on what it names in ``dependsOn`` and on the APIs it consumes; it is
depended on by what names it in ``dependencyOf`` (or depends on it) and by the consumers of
the APIs it provides. An API is provided by its providers and depended on by its consumers. A System,
a Domain, a Group or a User is answered for what it stands for — a system's parts, a domain's
systems and their parts, what a team or person owns: what those depend on outside it, and what
outside it depends on them, each line saying through which of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from callboard.catalog.model import Entity

from ._cards import Listing, listing_blocks
from ._lookup import describe_ref, entity_from, name_of, typo_note
from .api import Block, CommandSpec, Deps, Grammar, Header, Invocation, Notice, Reply, Status, Text

__all__ = ["SPEC", "run"]

_LIMIT = 500
#: At most this many entities are counted for a System, Domain, Group or User (said when cut)
_MEMBERS_MAX = 5000
_DOMAIN_DEPTH = 6

Edge = tuple[str, str, str | None]  # (ref, how it is related, through which member or API)


def _merge(edges: Iterable[Edge], *, leave_out: set[str] | frozenset[str] = frozenset()) -> tuple[tuple[str, str | None], ...]:
    """Each ref once, sorted, with the ways it is related: "consumed by a, b; needed by c"."""
    found: dict[str, dict[str, list[str]]] = {}
    for key, how, through in edges:
        if key in leave_out:
            continue
        whos = found.setdefault(key, {}).setdefault(how, [])
        if through and through not in whos:
            whos.append(through)
    return tuple((key, "; ".join(f"{how} {_join(whos)}" if whos else how
                                 for how, whos in found[key].items() if how or whos) or None)
                 for key in sorted(found))


def _join(names: list[str], shown: int = 3) -> str:
    if len(names) <= shown:
        return ", ".join(names)
    return ", ".join(names[:shown]) + f" and {len(names) - shown} more"


def _depends(e: Entity, member: str | None) -> list[Edge]:
    """What ``e`` depends on; ``member`` names ``e`` when it is counted for a bigger whole."""
    edges: list[Edge] = [(k, "needed by" if member else "", member) for k in e.related("dependsOn")]
    edges += [(k, "consumed by" if member else "consumed API", member) for k in e.related("consumesApi")]
    return edges


def _dependents(e: Entity, member: str | None, apis: Mapping[str, Entity]) -> list[Edge]:
    """What depends on ``e``: what names it as a dependency, its consumers (an API), and the
    consumers of the APIs it provides (``apis``: those APIs, with their relations)."""
    edges: list[Edge] = [(k, "depends on" if member else "", member) for k in e.related("dependencyOf")]
    edges += [(k, "consumes" if member else "consumes it", member) for k in e.related("apiConsumedBy")]
    for api in e.related("providesApi"):
        if api in apis:
            edges += [(k, "consumes", name_of(api)) for k in apis[api].related("apiConsumedBy")]
    return edges


async def _provided(deps: Deps, entities: Iterable[Entity], known: Mapping[str, Entity]) -> dict[str, Entity]:
    """The APIs ``entities`` provide, with their relations (those in ``known`` not read again)."""
    keys = {api for e in entities for api in e.related("providesApi")}
    found = {k: known[k] for k in keys if k in known}
    found.update(await deps.catalog.get_many([k for k in keys if k not in found], relations=True))
    return found


async def _members(deps: Deps, e: Entity) -> tuple[str, str, list[str]] | None:
    """What a System, Domain, Group or User stands for (data key, title, refs); None for the
    kinds answered for themselves."""
    kind = e.kind
    if kind == "System":
        return "parts", "Parts", e.related("hasPart")
    if kind in ("Group", "User"):
        return "owns", "Owns", e.related("ownerOf")
    if kind != "Domain":
        return None
    members: dict[str, None] = {}
    frontier = [e]
    for _ in range(_DOMAIN_DEPTH):  # subdomains, their systems, and those systems' parts
        nxt = [k for d in frontier for k in d.related("hasPart") if k not in members and k != e.ref.key]
        members.update(dict.fromkeys(nxt))
        containers = [k for k in nxt if k.startswith(("domain:", "system:"))]
        if not containers or len(members) >= _MEMBERS_MAX:
            break
        frontier = list((await deps.catalog.get_many(containers, relations=True)).values())
    return "parts", "Systems and their parts", list(members)


async def run(inv: Invocation, deps: Deps) -> Reply:
    e, query = await entity_from(inv, deps, usage=SPEC.usage)
    key = e.ref.key
    blocks: list[Block] = [Header(text=f"Dependencies of {describe_ref(key)}")]
    data: dict[str, Any] = {"entity": key, "kind": e.kind}
    note = typo_note(e, query)
    if note:
        blocks.append(Notice(level="info", text=note))
        data["note"] = note
    listings: list[Listing] = []
    whole = await _members(deps, e)
    if whole is None:
        apis = await _provided(deps, [e], {})
        depends = _merge(_depends(e, None), leave_out={key})
        dependents = _merge(_dependents(e, None, apis), leave_out={key})
        if e.kind == "API":
            listings.append(Listing(key="provided_by", title="Provided by",
                                    entries=tuple((k, None) for k in e.related("apiProvidedBy")), show_kind=False,
                                    empty="no component in the catalog provides it"))
        listings += [Listing(key="depends_on", title="Depends on", entries=depends),
                     Listing(key="dependency_of", title="Depended on by", entries=dependents)]
        if e.related("providesApi"):
            listings.append(Listing(key="provides_apis", title="Provides APIs",
                                    entries=tuple((k, None) for k in e.related("providesApi")), show_kind=False))
        data["consumes_apis"] = e.related("consumesApi")
    else:
        data_key, title, members = whole
        counted = members[:_MEMBERS_MAX]
        inside = {key, *counted}
        entities = await deps.catalog.get_many(counted, relations=True)
        apis = await _provided(deps, entities.values(), entities)
        depends_edges = _depends(e, None)
        dependents_edges = _dependents(e, None, apis)
        for member_key in counted:
            member = entities.get(member_key)
            if member is not None:
                depends_edges += _depends(member, name_of(member_key))
                dependents_edges += _dependents(member, name_of(member_key), apis)
        what = {"System": "it has", "Domain": "its systems have", "Group": "it owns", "User": "they own"}[e.kind]
        scope = (f"Counted over the {len(counted)} entities {what}; dependencies among them are left out."
                 if counted else f"There is nothing {what} in the catalog.")
        if len(members) > len(counted):
            scope += f" Only the first {len(counted)} of {len(members)} were counted."
        blocks.append(Text(text=scope))
        data["scope"] = scope
        listings += [Listing(key="depends_on", title="Depends on", entries=_merge(depends_edges, leave_out=inside)),
                     Listing(key="dependency_of", title="Depended on by",
                             entries=_merge(dependents_edges, leave_out=inside)),
                     Listing(key=data_key, title=title, entries=tuple((k, None) for k in members),
                             empty="nothing in the catalog")]
    lists, lists_data = await listing_blocks(deps, listings, limit=_LIMIT)
    blocks.extend(lists)
    data.update(lists_data)
    depends_on, dependency_of = data["depends_on"], data["dependency_of"]
    return Reply(
        status=Status.OK,
        blocks=tuple(blocks),
        summary=f"{name_of(key)} depends on {len(depends_on)}, {len(dependency_of)} depend on it",
        subject=key,
        data=data,
    )


SPEC = CommandSpec(
    name="deps",
    summary="What an entity depends on, and what depends on it",
    usage="deps <entity>",
    examples=("deps payment-service", "what depends on payments-db?", "what does payment-service depend on?"),
    run=run,
    aliases=("dependencies",),
    grammar=Grammar(
        phrasings=(
            "(what|who|which services|which components|what services|what components|anything|anyone) "
            "(depends|depend|relies|rely|is built|are built) on {entity}",
            "(what|who|which services|which components) (uses|use|calls|call|consumes|consume|needs|need) {entity}",
            "what (does|do|did) {entity} (depend|rely|build) on",
            "what (does|do) {entity} (use|need|call|consume|require)",
            "(dependencies|dependency|deps|dependents|dependants) (of|for|on) {entity}",
            "(what|which) (are|is) {entity} 's (dependencies|deps|dependents|dependants)",
            "{entity} 's (dependencies|deps|dependents|dependants)",
            "{entity} (dependencies|deps|dependents|dependants)",
            "what (breaks|would break|will break|could break|is affected|would be affected|goes down) (if|when) "
            "{entity} (goes down|is down|fails|breaks|dies|is broken|is slow)",
            "(does|is) (anything|anyone) (depend|depends|rely|relies|depending|relying) on {entity}",
        ),
    ),
)
