"""``info <entity>``: everything the catalog knows about one entity, on one card."""

from __future__ import annotations

from callboard.catalog.urls import strip_userinfo, without_userinfo

from .oncall import oncall_blocks
from ._lookup import describe_ref, entity_from, name_of, typo_note
from .api import CommandSpec, Deps, Fields, Header, Invocation, Links, Notice, Reply, Status, Text

__all__ = ["SPEC", "run"]


def _names(keys: list[str]) -> str:
    return ", ".join(name_of(k) for k in keys)


async def run(inv: Invocation, deps: Deps) -> Reply:
    e, query = await entity_from(inv, deps, usage=SPEC.usage)
    spec = e.spec
    blocks: list = [Header(text=e.title or e.ref.name, subtitle=describe_ref(e.ref.key))]
    note = typo_note(e, query)
    if note:
        blocks.append(Notice(level="info", text=note))
    if e.description:
        blocks.append(Text(text=e.description))
    systems = [k for k in e.related("partOf") if k.startswith("system:")]
    domains = [k for k in e.related("partOf") if k.startswith("domain:")]
    if systems and not domains:
        sys_entities = await deps.catalog.get_many(systems)
        for s in sys_entities.values():
            dom = s.spec.get("domain")
            if isinstance(dom, str):
                domains.append(f"domain:{s.ref.namespace}/{dom}" if ":" not in dom else dom)
    pairs: list[tuple[str, str]] = [("Kind", e.kind)]
    for label, key in (("Type", "type"), ("Lifecycle", "lifecycle")):
        if isinstance(spec.get(key), str):
            pairs.append((label, spec[key]))
    rel_fields = (
        ("Owner", e.related("ownedBy")),
        ("System", systems),
        ("Domain", domains),
        ("Provides APIs", e.related("providesApi")),
        ("Consumes APIs", e.related("consumesApi")),
        ("Depends on", e.related("dependsOn")),
        ("Depended on by", e.related("dependencyOf")),
        ("Member of", e.related("memberOf")),
        ("Parent", e.related("childOf")),
    )
    for label, keys in rel_fields:
        if keys:
            pairs.append((label, _names(keys)))
    tags = e.metadata.get("tags")
    if isinstance(tags, list) and tags:
        pairs.append(("Tags", ", ".join(str(t) for t in tags)))
    if e.file:
        pairs.append(("Source", strip_userinfo(f"{e.file}:{e.line}" if e.line else e.file)))
    blocks.append(Fields(pairs=tuple(pairs)))
    links = e.metadata.get("links")
    if isinstance(links, list) and links:
        blocks.append(
            Links(links=tuple((strip_userinfo(str(l.get("title") or l.get("url"))), strip_userinfo(str(l.get("url"))))
                        for l in links if isinstance(l, dict)))
        )
    if deps.oncall is not None and e.kind not in ("User", "Location", "Template"):
        resolution = await deps.oncall.resolve(deps.catalog, e)
        if resolution.answer is not None:  # the card shows who to page when a source knows
            blocks.extend(await oncall_blocks(deps, resolution, inv.tz))
    errors = await deps.catalog.errors(e.ref.key)
    for err in errors:
        blocks.append(Notice(level="warning", text=strip_userinfo(f"Catalog error at {err.where()}: {err.message}")))
    return Reply(
        status=Status.OK,
        blocks=tuple(blocks),
        summary=f"{describe_ref(e.ref.key)}: {e.description or e.title or ''}".strip().rstrip(":"),
        subject=e.ref.key,
        data={"entity": e.ref.key, "document": without_userinfo(e.data), "relations": [[r.type, r.target] for r in e.relations]},
    )


from .api import Grammar, Phrasing  # noqa: E402  (beside SPEC: the grammar is part of it)

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
