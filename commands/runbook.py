"""``runbook <entity> [topic]``: the runbook's steps, inline, then who owns it and where the
full page is.

Where a runbook is found, in order: a ``callboard.io/runbook`` annotation naming a TechDocs page
(``runbook.md``, ``docs/ops/runbook.md#failover``); a TechDocs page or section whose title or
path says runbook or playbook; a ``metadata.links`` entry whose type or title says runbook
(linked, since its text is not ours to read). With a topic, the best-matching section of the
runbook is shown (the whole docs of the entity when the runbook has no such section).
"""

from __future__ import annotations

import re

from callboard.catalog.model import Entity
from callboard.providers.techdocs.content import Part
from callboard.providers.techdocs.index import Section
from callboard.providers.techdocs.service import TechDocs

from ._lookup import describe_ref, find_entity, name_of, typo_note
from .api import (
    Actions,
    Block,
    Code,
    CommandSpec,
    Deps,
    Fields,
    Header,
    Invocation,
    Links,
    Notice,
    Reply,
    RunCommand,
    Status,
    Unanswered,
    Steps,
    Text,
)
from .docs import failed_notice
from .oncall import oncall_blocks
from .owner import contact_fields

__all__ = ["SPEC", "run", "runbook_location"]

ANNOTATION = "callboard.io/runbook"
_RUNBOOK = re.compile(r"run-?books?|play-?books?", re.IGNORECASE)
_MAX_PARTS = 40


def runbook_location(value: str) -> str:
    """A page as people write it (``docs/runbook.md#db``) as a site location (``runbook/#db``)."""
    page, _, anchor = value.strip().partition("#")
    page = page.strip().lstrip("./")
    if page.startswith("docs/"):
        page = page[len("docs/") :]
    if page.endswith(".md"):
        page = page[: -len(".md")]
        page = "" if page in ("index", "README") else (page[: -len("/index")] if page.endswith("/index") else page) + "/"
    elif page and not page.endswith("/"):
        page += "/"
    return page + (f"#{anchor}" if anchor else "")


def _link_runbooks(entity: Entity) -> list[tuple[str, str]]:
    out = []
    links = entity.metadata.get("links")
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict) or not isinstance(link.get("url"), str):
            continue
        label = f"{link.get('type') or ''} {link.get('title') or ''}"
        if _RUNBOOK.search(label):
            out.append((str(link.get("title") or "Runbook"), link["url"]))
    return out


def _runbook_sections(entity: Entity, sections: list[Section]) -> tuple[list[Section], str | None]:
    """The sections that make up the runbook, and where the choice came from."""
    annotations = entity.metadata.get("annotations") or {}
    named = annotations.get(ANNOTATION) if isinstance(annotations, dict) else None
    if isinstance(named, str) and named.strip():
        location = runbook_location(named)
        page, _, anchor = location.partition("#")
        chosen = [s for s in sections if s.location == location] if anchor else [
            s for s in sections if s.location.partition("#")[0] == page
        ]
        if chosen:
            return chosen, f"the {ANNOTATION} annotation"
    pages = [s.location.partition("#")[0] for s in sections if _RUNBOOK.search(s.location.partition("#")[0])]
    pages += [s.location.partition("#")[0] for s in sections if _RUNBOOK.search(s.page_title)]
    if pages:
        page = pages[0]
        return [s for s in sections if s.location.partition("#")[0] == page], None
    titled = [s for s in sections if _RUNBOOK.search(s.title)]
    if titled:
        # a section called "Runbook" and the sections under it on that page
        first = titled[0]
        page = first.location.partition("#")[0]
        on_page = [s for s in sections if s.location.partition("#")[0] == page]
        start = on_page.index(first)
        return on_page[start:], None
    return [], None


def _blocks(parts: list[Part]) -> list[Block]:
    out: list[Block] = []
    for part in parts[:_MAX_PARTS]:
        if part.kind == "paragraph":
            out.append(Text(text=part.text))
        elif part.kind == "heading":
            out.append(Text(text=part.text, strong=True))
        elif part.kind in ("steps", "bullets"):
            out.append(Steps(items=part.items, ordered=part.kind == "steps"))
        elif part.kind == "code":
            out.append(Code(text=part.text, language=part.language))
    if len(parts) > _MAX_PARTS:
        out.append(Notice(level="info", text=f"… {len(parts) - _MAX_PARTS} more parts on the full page."))
    return out


def _split(args: tuple[str, ...]) -> list[tuple[str, str]]:
    """(entity words, topic) to try: the first word alone first, then longer titles."""
    return [(" ".join(args[:n]), " ".join(args[n:])) for n in range(1, len(args) + 1)]


async def run(inv: Invocation, deps: Deps) -> Reply:
    if not inv.args:
        return Reply.notice(Status.USAGE, f"Usage: {SPEC.usage}")
    found: Entity | None = None
    query = topic = ""
    for query, topic in _split(inv.args):
        try:
            found = await find_entity(deps, query, command="runbook")
            break
        except Unanswered:
            continue
    if found is None:  # no prefix names an entity: say why the first word does not
        await find_entity(deps, inv.args[0], command="runbook")
        raise Unanswered(Reply.notice(Status.NOT_FOUND, f'No entity matches "{inv.args[0]}".'))
    entity = found
    docs = deps.docs
    owners = entity.related("ownedBy")
    owner_entities = await deps.catalog.get_many(owners)
    contact: list[tuple[str, str]] = []
    for key in owners:
        contact.append(("Owner", name_of(key)))
        if key in owner_entities:
            contact.extend(contact_fields(owner_entities[key]))
    link_books = _link_runbooks(entity)
    state = await docs.state(entity.ref.key) if docs else None
    sections = await docs.sections(entity.ref.key) if docs and state and state.built else []
    chosen, source = _runbook_sections(entity, sections)
    note = typo_note(entity, query)
    header = f"Runbook: {name_of(entity.ref.key)}"
    blocks: list[Block] = []
    notice = failed_notice(state)
    if not chosen:
        if notice:
            blocks.append(notice)
        if link_books:
            blocks = [Header(text=header, subtitle=describe_ref(entity.ref.key)), *blocks]
            if note:
                blocks.append(Notice(level="info", text=note))
            blocks.append(Text(text="The runbook is kept outside Callboard's docs; open it here:"))
            blocks.append(Links(links=tuple(link_books)))
            if contact:
                blocks.append(Fields(pairs=tuple(contact)))
            blocks.extend(await _oncall(deps, entity, inv))
            return Reply(status=Status.OK, blocks=tuple(blocks), summary=f"Runbook of {name_of(entity.ref.key)}: {link_books[0][1]}",
                         subject=entity.ref.key, data={"entity": entity.ref.key, "links": [u for _, u in link_books], "section": None})
        text = (
            f"{describe_ref(entity.ref.key)} has no runbook: no TechDocs page or section named runbook or "
            f"playbook, no {ANNOTATION} annotation, and no metadata.links entry of type runbook."
        )
        return Reply.notice(Status.NOT_FOUND, text, *blocks, *((Fields(pairs=tuple(contact)),) if contact else ()),
                            data={"entity": entity.ref.key, "section": None})
    assert docs is not None
    section, picked_by = await _pick(docs, entity.ref.key, chosen, sections, topic)
    blocks.append(Header(text=f"{header} › {section.title}" if section.title else header,
                         subtitle=describe_ref(entity.ref.key)))
    if note:
        blocks.append(Notice(level="info", text=note))
    if notice:
        blocks.append(notice)
    if picked_by:
        blocks.append(Notice(level="info", text=picked_by))
    parts = await docs.parts(entity.ref.key, section.location)
    blocks.extend(_blocks(parts) if parts else [Text(text=section.text)])
    if contact:
        blocks.append(Fields(pairs=tuple(contact)))
    blocks.extend(await _oncall(deps, entity, inv))
    links = [("Full page", docs.link(entity.ref.key, section.location)), *link_books]
    blocks.append(Links(links=tuple(links)))
    others = [s for s in chosen if s.location != section.location and "#" in s.location][:10]
    if others:
        blocks.append(Actions(actions=tuple(
            RunCommand(label=s.title[:70], command=f"runbook {entity.ref.key} {s.title}") for s in others)))
    return Reply(
        status=Status.OK,
        blocks=tuple(blocks),
        summary=f"Runbook of {name_of(entity.ref.key)}: {section.title}",
        subject=entity.ref.key,
        data={"entity": entity.ref.key, "section": section.location, "title": section.title,
              "url": docs.link(entity.ref.key, section.location), "source": source or "techdocs",
              "topics": [s.title for s in chosen]},
    )


async def _oncall(deps: Deps, entity: Entity, inv: Invocation) -> list[Block]:
    """Who to page, right under the steps."""
    if deps.oncall is None:
        return []
    resolution = await deps.oncall.resolve(deps.catalog, entity)
    if resolution.answer is None and not resolution.failures:
        return []  # no on-call source knows this entity: the owner's contacts above say it all
    return await oncall_blocks(deps, resolution, inv.tz)


async def _pick(
    docs: TechDocs, key: str, chosen: list[Section], sections: list[Section], topic: str
) -> tuple[Section, str | None]:
    if not topic:
        return chosen[0], (
            "Topics in this runbook are listed below; ask `runbook <entity> <topic>` for one." if len(chosen) > 1 else None
        )
    in_runbook = {s.location for s in chosen}
    hits = await docs.search(topic, entity=key, limit=20)
    for hit in hits:
        if hit.location in in_runbook:
            return next(s for s in chosen if s.location == hit.location), None
    if hits:
        best = next((s for s in sections if s.location == hits[0].location), None)
        if best is not None:
            return best, f'The runbook has no section on "{topic}"; this is the closest part of the docs.'
    return chosen[0], f'Nothing in the runbook matches "{topic}"; here is its beginning.'


from .api import Grammar  # noqa: E402  (beside SPEC: the grammar is part of it)

SPEC = CommandSpec(
    name="runbook",
    summary="The runbook's steps, inline, with the owner and a link to the full page",
    usage="runbook <entity> [topic]",
    examples=("runbook payment-service", "runbook payment-service webhook backlog", "runbook checkout-api cache stampede",
              "runbook for payment-service", "how do I fix the webhook backlog on payment-service?"),
    run=run,
    aliases=("playbook",),
    grammar=Grammar(
        phrasings=(
            "(runbook|runbooks|playbook|playbooks) (for|of|on|about) {entity} {topic?}",
            "(where is|where are|what is|what are|show me|give me|open|find|get) (runbook|runbooks|playbook|playbooks) "
            "(for|of|on|about) {entity} {topic?}",
            "{entity} 's (runbook|runbooks|playbook|playbooks) {topic?}",
            "{entity} (runbook|runbooks|playbook|playbooks) {topic?}",
            "how (do|can|should|would|could) (I|we|you|one) {topic} (on|for|in|with|of|at) {entity}",
            "how to {topic} (on|for|in|with|of|at) {entity}",
            "(steps|procedure) (to|for) {topic} (on|for|in|with|of|at) {entity}",
        ),
        args=("{entity}", "{topic}"),
        stop_words=("for", "of"),
    ),
)
