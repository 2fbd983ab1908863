"""``info <entity>``: everything the catalog knows about one entity, on one card.

Each kind's card shows its part of the graph as Backstage's entity page does: an API who
provides and who consumes it; a System its components, APIs and resources; a Domain its
systems; a Component its parent and subcomponents, the APIs it provides and consumes, what it
depends on and what depends on it; a Group its parent, sub-teams, members and what it owns; a
User their teams. Long lists are cut (the total is shown, with the command that lists them all);
``data`` carries every field and every list whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from callboard.catalog.model import Entity
from callboard.catalog.urls import strip_userinfo, without_userinfo

from ._cards import Listing, fields_data, listing_blocks, related
from ._lookup import describe_ref, entity_from, name_of, typo_note
from .api import Block, CommandSpec, Deps, Fields, Grammar, Header, Invocation, Links, Notice, Phrasing, Reply, Status, Text
from .oncall import oncall_answer
from .owner import contact_fields

__all__ = ["SPEC", "run"]

#: How many entities each list on a card shows (the rest: the total, and the command for all)
CARD_LIMIT = 10
_PARTS = ("component", "api", "resource")


def _names(keys: list[str]) -> str:
    return ", ".join(name_of(k) for k in keys)


def _of_kind(keys: list[str], kind: str) -> list[str]:
    return [k for k in keys if k.startswith(kind + ":")]


#: The most YAML events read from an API definition to find what it says it is (a card is a
#: lookup: the definition is streamed, and left once its format and version are known)
_DEFINITION_EVENTS = 5000
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FORMATS = ("openapi", "swagger", "asyncapi")


class _TooLong(Exception):
    """The definition does not say what it is within ``_DEFINITION_EVENTS`` events."""


def _events(text: str) -> Iterator[yaml.Event]:
    for count, event in enumerate(yaml.parse(text, Loader=_SafeLoader)):
        if count >= _DEFINITION_EVENTS:
            raise _TooLong
        yield event


def _skip(event: yaml.Event, events: Iterator[yaml.Event]) -> None:
    """Pass over the node ``event`` starts."""
    depth = 0
    while True:
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        if depth <= 0:
            return
        event = next(events)


def _pairs(events: Iterator[yaml.Event]) -> Iterator[tuple[str | None, yaml.Event]]:
    """The (key, first event of the value) pairs of the mapping being read, to its end; a key
    that is not a scalar comes as None. The caller passes over each value it does not read."""
    while True:
        key = next(events)
        if isinstance(key, yaml.MappingEndEvent):
            return
        _skip(key, events)
        yield (key.value if isinstance(key, yaml.ScalarEvent) else None), next(events)


def _said(text: str) -> list[str]:
    """What a definition says it is — "openapi 3.0.3", "version 1.4.0" — read from its
    top-level keys, streamed and left as soon as both are known (JSON is YAML too; anything
    else says nothing)."""
    said: dict[str, str] = {}
    events = _events(text)
    try:
        event = next(events)
        while not isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent, yaml.ScalarEvent)):
            event = next(events)  # stream and document start
        if not isinstance(event, yaml.MappingStartEvent):
            return []
        for name, value in _pairs(events):
            if name in _FORMATS and isinstance(value, yaml.ScalarEvent) and "format" not in said:
                said["format"] = f"{name} {value.value}"
            elif name == "info" and isinstance(value, yaml.MappingStartEvent):
                for inner, inner_value in _pairs(events):
                    if inner == "version" and isinstance(inner_value, yaml.ScalarEvent):
                        said["version"] = f"version {inner_value.value}"
                    _skip(inner_value, events)
            else:
                _skip(value, events)
            if len(said) == 2:
                break
    except (yaml.YAMLError, StopIteration, _TooLong):
        pass
    return [said[k] for k in ("format", "version") if k in said]


def _definition(spec: dict[str, Any]) -> str | None:
    """An API definition in a few words: its lines, and what it says it is when it says so."""
    text = spec.get("definition")
    if not isinstance(text, str) or not text.strip():
        return None
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    said = _said(text)
    return f"{lines} line{'' if lines == 1 else 's'}" + (f" ({', '.join(said)})" if said else "")


def _listings(e: Entity) -> list[Listing]:
    """The lists a card of ``e``'s kind shows, as Backstage's entity page for that kind."""
    key = e.ref.key
    deps_cmd, team_cmd = f"deps {key}", f"team {key}"
    kind = e.kind
    depends = Listing(key="depends_on", title="Depends on", entries=related(e, ("dependsOn", None, None)),
                      more=deps_cmd)
    dependents = Listing(key="dependency_of", title="Depended on by",
                         entries=related(e, ("dependencyOf", None, None)), more=deps_cmd)
    if kind == "Component":
        return [
            Listing(key="subcomponents", title="Subcomponents", entries=related(e, ("hasPart", "component", None)),
                    show_kind=False, always=False),
            Listing(key="provides_apis", title="Provides APIs", entries=related(e, ("providesApi", None, None)),
                    show_kind=False, always=False, more=deps_cmd),
            Listing(key="consumes_apis", title="Consumes APIs", entries=related(e, ("consumesApi", None, None)),
                    show_kind=False, always=False, more=deps_cmd),
            depends,
            dependents,
        ]
    if kind == "API":
        return [
            Listing(key="provided_by", title="Provided by", entries=related(e, ("apiProvidedBy", None, None)),
                    empty="no component in the catalog provides it", more=deps_cmd),
            Listing(key="consumed_by", title="Consumed by", entries=related(e, ("apiConsumedBy", None, None)),
                    empty="no component in the catalog consumes it", more=deps_cmd),
            Listing(key="depends_on", title="Depends on", entries=depends.entries, more=deps_cmd, always=False),
            Listing(key="dependency_of", title="Depended on by", entries=dependents.entries, more=deps_cmd, always=False),
        ]
    if kind == "System":
        parts = e.related("hasPart")
        return [
            Listing(key="components", title="Components", entries=related(e, ("hasPart", "component", None)),
                    show_kind=False, more=deps_cmd),
            Listing(key="apis", title="APIs", entries=related(e, ("hasPart", "api", None)), show_kind=False,
                    more=deps_cmd),
            Listing(key="resources", title="Resources", entries=related(e, ("hasPart", "resource", None)),
                    show_kind=False, more=deps_cmd),
            Listing(key="other_parts", title="Other parts",
                    entries=tuple((k, None) for k in parts if k.split(":", 1)[0] not in _PARTS), more=deps_cmd, always=False),
            Listing(key="depends_on", title="Depends on", entries=depends.entries, more=deps_cmd, always=False),
            Listing(key="dependency_of", title="Depended on by", entries=dependents.entries, more=deps_cmd, always=False),
        ]
    if kind == "Domain":
        parts = e.related("hasPart")
        return [
            Listing(key="systems", title="Systems", entries=related(e, ("hasPart", "system", None)), show_kind=False,
                    more=deps_cmd),
            Listing(key="subdomains", title="Subdomains", entries=related(e, ("hasPart", "domain", None)),
                    show_kind=False, more=deps_cmd, always=False),
            Listing(key="other_parts", title="Other parts",
                    entries=tuple((k, None) for k in parts if k.split(":", 1)[0] not in ("system", "domain")),
                    more=deps_cmd, always=False),
        ]
    if kind == "Resource":
        return [depends, dependents]
    if kind == "Group":
        return [
            Listing(key="sub_teams", title="Sub-teams", entries=related(e, ("parentOf", None, None)),
                    show_kind=False, more=team_cmd, always=False),
            Listing(key="members", title="Members", entries=related(e, ("hasMember", None, None)), people=True,
                    more=team_cmd),
            Listing(key="owns", title="Owns", entries=related(e, ("ownerOf", None, None)),
                    empty="nothing in the catalog", more=team_cmd),
        ]
    if kind == "User":
        return [
            Listing(key="teams", title="Teams", entries=related(e, ("memberOf", None, None)), show_kind=False,
                    empty="no team in the catalog"),
            Listing(key="owns", title="Owns", entries=related(e, ("ownerOf", None, None)), more=f"owner {key}", always=False),
        ]
    # Location, Template and kinds Callboard does not know: whatever relations they have
    return [
        Listing(key="owns", title="Owns", entries=related(e, ("ownerOf", None, None)), always=False),
        Listing(key="has_parts", title="Has parts", entries=related(e, ("hasPart", None, None)), always=False),
        Listing(key="depends_on", title="Depends on", entries=depends.entries, always=False),
        Listing(key="dependency_of", title="Depended on by", entries=dependents.entries, always=False),
    ]


async def _fields(deps: Deps, e: Entity) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """The card's fields, and the refs behind those that name entities."""
    spec = e.spec
    kind = e.kind
    part_of = e.related("partOf")
    systems = _of_kind(part_of, "system") if kind not in ("System", "Domain") else []
    domains = _of_kind(part_of, "domain") if kind != "Domain" else []
    if systems and not domains:  # an entity's domain is its system's
        for system in (await deps.catalog.get_many(systems, relations=True)).values():
            domains.extend(d for d in _of_kind(system.related("partOf"), "domain") if d not in domains)
    refs: dict[str, list[str]] = {"owner": e.related("ownedBy"), "system": systems, "domain": domains}
    pairs: list[tuple[str, str]] = [("Kind", e.kind)]
    for label, key in (("Type", "type"), ("Lifecycle", "lifecycle")):
        if isinstance(spec.get(key), str):
            pairs.append((label, spec[key]))
    if kind in ("Group", "User"):
        pairs.extend(contact_fields(e))  # name, email, channel, parent group
        refs["parent"] = e.related("childOf")
    for label, key in (("Owner", "owner"), ("System", "system"), ("Domain", "domain")):
        if refs[key]:
            pairs.append((label, _names(refs[key])))
    if kind == "Component":
        refs["subcomponent_of"] = _of_kind(part_of, "component")
        if refs["subcomponent_of"]:
            pairs.append(("Subcomponent of", _names(refs["subcomponent_of"])))
    if kind == "Domain":
        refs["subdomain_of"] = _of_kind(part_of, "domain")
        if refs["subdomain_of"]:
            pairs.append(("Subdomain of", _names(refs["subdomain_of"])))
    if kind == "API":
        definition = _definition(spec)
        if definition:
            pairs.append(("Definition", definition))
    if kind == "Location":
        targets = [t for t in [spec.get("target"), *(spec.get("targets") or [])] if isinstance(t, str)]
        if targets:
            pairs.append(("Targets", ", ".join(strip_userinfo(t) for t in targets[:5])
                          + (f" and {len(targets) - 5} more" if len(targets) > 5 else "")))
    tags = e.metadata.get("tags")
    if isinstance(tags, list) and tags:
        pairs.append(("Tags", ", ".join(str(t) for t in tags)))
    if e.file:
        pairs.append(("Source", strip_userinfo(f"{e.file}:{e.line}" if e.line else e.file)))
    return pairs, refs


async def run(inv: Invocation, deps: Deps) -> Reply:
    e, query = await entity_from(inv, deps, usage=SPEC.usage)
    blocks: list[Block] = [Header(text=e.title or e.ref.name, subtitle=describe_ref(e.ref.key))]
    data: dict[str, Any] = {"entity": e.ref.key, "kind": e.kind, "title": e.title, "description": e.description}
    note = typo_note(e, query)
    if note:
        blocks.append(Notice(level="info", text=note))
        data["note"] = note
    if e.description:
        blocks.append(Text(text=e.description))
    pairs, refs = await _fields(deps, e)
    blocks.append(Fields(pairs=tuple(pairs)))
    data["fields"] = fields_data(pairs)
    data.update(refs)
    lists, lists_data = await listing_blocks(deps, _listings(e), limit=CARD_LIMIT)
    blocks.extend(lists)
    data.update(lists_data)
    links = e.metadata.get("links")
    shown_links: list[tuple[str, str]] = []
    if isinstance(links, list):
        shown_links = [(strip_userinfo(str(link.get("title") or link.get("url"))), strip_userinfo(str(link.get("url"))))
                       for link in links if isinstance(link, dict)]
    if shown_links:
        blocks.append(Links(links=tuple(shown_links)))
    data["links"] = [{"title": title, "url": url} for title, url in shown_links]
    data["oncall"] = None
    if deps.oncall is not None and e.kind not in ("User", "Location", "Template"):
        resolution = await deps.oncall.resolve(deps.catalog, e)
        if resolution.answer is not None:  # the card shows who to page when a source knows
            oncall, data["oncall"] = await oncall_answer(deps, resolution, inv.tz)
            blocks.extend(oncall)
    errors = await deps.catalog.errors(e.ref.key)
    problems = [strip_userinfo(f"Catalog error at {err.where()}: {err.message}") for err in errors]
    blocks.extend(Notice(level="warning", text=text) for text in problems)
    data["errors"] = problems
    data["document"] = without_userinfo(e.data)
    data["relations"] = [[r.type, r.target] for r in e.relations]
    return Reply(
        status=Status.OK,
        blocks=tuple(blocks),
        summary=f"{describe_ref(e.ref.key)}: {e.description or e.title or ''}".strip().rstrip(":"),
        subject=e.ref.key,
        data=data,
    )


SPEC = CommandSpec(
    name="info",
    summary="Everything about one entity: owner, system, APIs, dependencies, links, source",
    usage="info <entity>",
    examples=("info payment-service", "what is checkout-api?", "what is part of the payments system?", "fraud-detector"),
    run=run,
    aliases=("show", "describe"),
    grammar=Grammar(
        phrasings=(
            Phrasing(pattern="what (is|are) (part of|in|inside|under|within) {entity}", kinds=("system", "domain")),
            Phrasing(pattern="what (belongs|belong) (to|in) {entity}", kinds=("system", "domain")),
            Phrasing(pattern="(what|which) (components|services|apis|resources|parts|systems|things|entities) (are|is) "
                             "(in|part of|under|inside|within) {entity}", kinds=("system", "domain")),
            Phrasing(pattern="(parts|components) of {entity}", kinds=("system", "domain")),
            Phrasing(pattern="(what|which) (team|teams|group|groups) (is|are) {entity} (in|on|part of|a member of)",
                     kinds=("user",)),
            Phrasing(pattern="(what|which) (team|teams|group|groups) (does|do) {entity} (belong to|work in|work on|work for)",
                     kinds=("user",)),
            "(tell|tell me|tell us) about {entity}",
            "(what|who) (is|are) {entity}",
            "(describe|explain) {entity}",
            "show me {entity}",
            "what (does|do) {entity} do",
            "what do (you|we) know about {entity}",
            "(info|details|information|card) (on|about|for|of) {entity}",
        ),
    ),
)
