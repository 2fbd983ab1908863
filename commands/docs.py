"""``docs <query>``: search every TechDocs section; ``docs <entity> [query]``: one entity's docs
(without a query: its home page and table of contents)."""

from __future__ import annotations

from callboard.providers.techdocs.index import DocHit, Section
from callboard.providers.techdocs.service import SiteState, TechDocs

from ._lookup import describe_ref, name_of
from .api import (
    CommandSpec,
    Deps,
    Grammar,
    Header,
    Hit,
    Hits,
    Invocation,
    Item,
    ItemList,
    Links,
    Notice,
    Reply,
    Status,
)

__all__ = ["SPEC", "docs_scope", "failed_notice", "hit_block", "run"]

_LIMIT = 5


def hit_block(docs: TechDocs, hit: DocHit) -> Hit:
    """A hit with where it is: entity › page › the headings above the section (the page's own
    title heading left out when it repeats the page's name)."""
    trail = [hit.page_title] if hit.page_title and hit.page_title != hit.title else []
    trail += [h for h in hit.path[1:] if h != hit.title]
    where = " › ".join([name_of(hit.entity), *trail])
    return Hit(title=hit.title or hit.page_title or name_of(hit.entity), where=where, runs=hit.snippet,
               url=docs.link(hit.entity, hit.location), ref=hit.entity)


def failed_notice(state: SiteState | None) -> Notice | None:
    """What to say when the latest build of these docs failed (an older site may still answer)."""
    if state is None or state.status != "failed":
        return None
    kept = " Showing the last good build." if state.built else ""
    return Notice(level="warning", text=f"The latest TechDocs build failed: {state.error}{kept}")


async def docs_scope(deps: Deps, args: tuple[str, ...]) -> tuple[str, str] | None:
    """(entity key, rest of the query) when the first word names an entity exactly."""
    if not args:
        return None
    result = deps.catalog.search(args[0])
    match = result.match
    if match is not None and (match.exact or (len(args) == 1 and match.distance <= 2)):
        return match.key, " ".join(args[1:]).strip()
    return None


async def run(inv: Invocation, deps: Deps) -> Reply:
    if not inv.args:
        return Reply.notice(Status.USAGE, f"Usage: {SPEC.usage}")
    docs = deps.docs
    if docs is None:
        return Reply.notice(Status.ERROR, "TechDocs are not available in this process.")
    scope = await docs_scope(deps, inv.args)
    if scope is not None:
        key, query = scope
        state = await docs.state(key)
        if state is not None or query:
            return await _scoped(docs, key, query, state)
        found = await _search(docs, " ".join(inv.args))
        # an entity without docs, named exactly: say so, rather than "no section matches its name"
        return found if found.status is Status.OK else await _scoped(docs, key, query, None)
    return await _search(docs, " ".join(inv.args))


async def _search(docs: TechDocs, query: str) -> Reply:
    hits = await docs.search(query, limit=_LIMIT)
    if not hits:
        if not await docs.has_index():
            return Reply.notice(
                Status.NOT_FOUND,
                "No TechDocs have been built yet. `callboard sync` builds them (the server does it in the background).",
            )
        return Reply.notice(Status.NOT_FOUND, f'No docs section matches "{query}". Try fewer or other words.',
                            data={"query": query, "hits": []})
    blocks: list = [Header(text=f'Docs for "{query}"'), Hits(title="Best matches", hits=tuple(hit_block(docs, h) for h in hits))]
    return Reply(
        status=Status.OK,
        blocks=tuple(blocks),
        summary=f'{len(hits)} docs section(s) for "{query}"; best: {hits[0].title} ({name_of(hits[0].entity)})',
        data={"query": query, "hits": [_hit_data(docs, h) for h in hits]},
    )


async def _scoped(docs: TechDocs, key: str, query: str, state: SiteState | None) -> Reply:
    notice = failed_notice(state)
    if state is None:
        return Reply.notice(
            Status.NOT_FOUND,
            f"{describe_ref(key)} has no TechDocs (no backstage.io/techdocs-ref annotation, or nothing to build "
            "where it points: no mkdocs.yml, docs/ or README.md).",
            data={"entity": key},
        )
    if not state.built:
        return Reply.notice(
            Status.ERROR if state.status == "failed" else Status.NOT_FOUND,
            f"The TechDocs of {describe_ref(key)} could not be built: {state.error}"
            if state.status == "failed" else f"The TechDocs of {describe_ref(key)} are not built yet.",
            data={"entity": key, "error": state.error},
        )
    if not query:
        sections = await docs.sections(key)
        blocks: list = [Header(text=f"Docs: {name_of(key)}", subtitle=describe_ref(key))]
        if notice:
            blocks.append(notice)
        blocks.append(Links(links=(("Open the docs", docs.link(key, "")),)))
        blocks.append(ItemList(title="Contents", items=tuple(_toc(sections)), empty="no sections"))
        return Reply(
            status=Status.OK, blocks=tuple(blocks),
            summary=f"Docs of {name_of(key)}: {len(sections)} section(s)",
            subject=key,
            data={"entity": key, "link": docs.link(key, ""), "sections": [s.location for s in sections]},
        )
    hits = await docs.search(query, entity=key, limit=_LIMIT)
    if not hits:
        return Reply.notice(Status.NOT_FOUND, f'Nothing in the docs of {name_of(key)} matches "{query}".',
                            *((notice,) if notice else ()), data={"entity": key, "query": query, "hits": []})
    blocks = [Header(text=f'{name_of(key)} docs: "{query}"')]
    if notice:
        blocks.append(notice)
    blocks.append(Hits(title="Best matches", hits=tuple(hit_block(docs, h) for h in hits)))
    return Reply(
        status=Status.OK, blocks=tuple(blocks),
        summary=f'{len(hits)} section(s) of {name_of(key)} for "{query}"; best: {hits[0].title}',
        subject=key,
        data={"entity": key, "query": query, "hits": [_hit_data(docs, h) for h in hits]},
    )


def _toc(sections: list[Section]) -> list[Item]:
    items = []
    for s in sections:
        anchored = "#" in s.location
        label = s.title if not anchored or s.title == s.page_title else f"{s.page_title} › {s.title}"
        items.append(Item(label=label or s.location or "Home"))
    return items


def _hit_data(docs: TechDocs, h: DocHit) -> dict[str, object]:
    return {
        "entity": h.entity, "location": h.location, "title": h.title, "page": h.page_title, "path": list(h.path),
        "score": round(h.score, 3), "snippet": "".join(t for t, _ in h.snippet), "url": docs.link(h.entity, h.location),
    }


SPEC = CommandSpec(
    name="docs",
    summary="Search TechDocs (typos welcome), or open one entity's docs",
    usage="docs <query> | docs <entity> [query]",
    examples=("docs stripe webhook backlog", "docs payment-service", "docs checkout-api cache",
              "where are the docs for payment-service?"),
    run=run,
    aliases=("doc", "techdocs"),
    grammar=Grammar(
        phrasings=(
            "(docs|doc|documentation|techdocs|documents) (for|of|on|about) {entity} {topic?}",
            "(where|what) (is|are) (docs|doc|documentation|techdocs) (for|of|on|about) {entity} {topic?}",
            "where (can|do|could|should) (I|we) (find|read|see|get) (docs|documentation|doc) (for|of|on|about) "
            "{entity} {topic?}",
            "(show|open|find|give|get) [me|us] (docs|documentation|doc|techdocs) (for|of|on|about) {entity} {topic?}",
            "{entity} 's (docs|documentation|techdocs)",
            "{entity} (docs|documentation|techdocs)",
        ),
        args=("{entity}", "{topic}"),
    ),
)
