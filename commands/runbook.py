"""``runbook <entity> [topic]``: the runbook's steps, inline, then who owns it and where the
full page is.

Where a runbook is found, in order: a ``callboard.io/runbook`` annotation naming a TechDocs page
(``runbook.md``, ``docs/ops/runbook.md#failover``); a TechDocs page or section whose title or
path says runbook or playbook; a ``metadata.links`` entry whose type or title says runbook
(linked, since its text is not ours to read).

Without a topic: the runbook's introduction (or its first topic when it has none) and the list
of its topics, each a command to ask for it. With a topic: the runbook's section of that title,
else its best match by search (any word form: "restart" finds "Restarting", "rollback" finds
"Rolling back"). When the runbook has nothing on the topic, or the entity has no runbook page
at all, the best-matching section of the entity's own docs is shown, and the answer says so.
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
    Grammar,
    Header,
    Invocation,
    Item,
    ItemList,
    Links,
    Notice,
    Reply,
    RunCommand,
    Status,
    Steps,
    Text,
    Unanswered,
)
from .docs import failed_notice
from .oncall import oncall_blocks
from .owner import contact_fields

__all__ = ["SPEC", "run", "runbook_location", "topics"]

ANNOTATION = "callboard.io/runbook"
_RUNBOOK = re.compile(r"run-?books?|play-?books?", re.IGNORECASE)
_MAX_PARTS = 40
#: Sections of an entity's docs listed when it has no runbook page.
_DOCS_TOPICS = 10
_MAX_TOPIC_BUTTONS = 10
_WORD = re.compile(r"[^\W_]+")
_UNQUOTED = re.compile(r"[\"'`\\\u2018\u2019\u201c\u201d]")


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


def _page(section: Section) -> str:
    return section.location.partition("#")[0]


def _under(first: Section, sections: list[Section]) -> list[Section]:
    """``first`` and the sections after it on its page that sit under it (deeper headings)."""
    on_page = [s for s in sections if _page(s) == _page(first)]
    start = on_page.index(first)
    out = [first]
    for s in on_page[start + 1 :]:
        if len(s.path) <= len(first.path):
            break
        out.append(s)
    return out


def _runbook_sections(entity: Entity, sections: list[Section]) -> tuple[list[Section], str | None]:
    """The sections that make up the runbook, and where the choice came from."""
    annotations = entity.metadata.get("annotations") or {}
    named = annotations.get(ANNOTATION) if isinstance(annotations, dict) else None
    if isinstance(named, str) and named.strip():
        location = runbook_location(named)
        page, _, anchor = location.partition("#")
        if anchor:
            first = next((s for s in sections if s.location == location), None)
            chosen = _under(first, sections) if first is not None else []
        else:
            chosen = [s for s in sections if _page(s) == page]
        if chosen:
            return chosen, f"the {ANNOTATION} annotation"
    pages = [_page(s) for s in sections if _RUNBOOK.search(_page(s))]
    pages += [_page(s) for s in sections if _RUNBOOK.search(s.page_title)]
    if pages:
        return [s for s in sections if _page(s) == pages[0]], None
    titled = [s for s in sections if _RUNBOOK.search(s.title)]
    if titled:  # a section called "Runbook" and the sections under it
        return _under(titled[0], sections), None
    return [], None


def topics(chosen: list[Section]) -> tuple[Section | None, list[Section]]:
    """The runbook's title section (its heading names the whole runbook; None when it has none)
    and its topics: the sections at the first level under it."""
    if not chosen:
        return None, []
    top = min(len(s.path) for s in chosen)
    at_top = [s for s in chosen if len(s.path) == top]
    if len(at_top) == 1 and chosen[0] is at_top[0] and len(chosen) > 1:
        rest = chosen[1:]
        depth = min(len(s.path) for s in rest)
        return chosen[0], [s for s in rest if len(s.path) == depth and s.title]
    return None, [s for s in at_top if s.title]


def _words(text: str) -> str:
    return "".join(_WORD.findall(text.lower()))


def _topic_command(key: str, title: str) -> str:
    """A command that asks for one topic: its title without what a command line reads as quoting
    (quotes, backslashes, backticks); a topic is matched by its words, so nothing is lost."""
    words = " ".join(_UNQUOTED.sub(" ", title).split())
    return f"runbook {key} {words}".strip()


def _where(section: Section) -> str:
    trail = [section.page_title] if section.page_title and section.page_title != section.title else []
    trail += [h for h in section.path[1:] if h != section.title]
    return " › ".join([*trail, section.title or section.page_title or section.location or "Home"])


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
    key = entity.ref.key
    docs = deps.docs
    owners = entity.related("ownedBy")
    owner_entities = await deps.catalog.get_many(owners)
    contact: list[tuple[str, str]] = []
    for owner in owners:
        contact.append(("Owner", name_of(owner)))
        if owner in owner_entities:
            contact.extend(contact_fields(owner_entities[owner]))
    link_books = _link_runbooks(entity)
    state = await docs.state(key) if docs else None
    sections = await docs.sections(key) if docs and state and state.built else []
    chosen, source = _runbook_sections(entity, sections)
    answer = _Answer(deps, inv, entity, contact, link_books, typo_note(entity, query), failed_notice(state))
    if chosen:
        assert docs is not None
        return await _from_runbook(answer, docs, chosen, sections, topic, source)
    if docs is not None and sections and topic:
        return await _from_docs(answer, docs, sections, topic)
    if link_books:
        return await answer.linked()
    text = (
        f"{describe_ref(key)} has no runbook: no TechDocs page or section named runbook or "
        f"playbook, no {ANNOTATION} annotation, and no metadata.links entry of type runbook."
    )
    blocks: list[Block] = [b for b in (answer.failed,) if b is not None]
    if contact:
        blocks.append(Fields(pairs=tuple(contact)))
    topics: list[dict[str, str]] = []
    if sections:
        # what its docs cover, each a command away: at 3 a.m. a list to pick from beats a search to type
        titled = [s for s in sections if "#" in s.location and s.title][:_DOCS_TOPICS]
        text += f" Its docs have {len(sections)} section(s): ask `runbook {name_of(key)} <topic>` for the closest one."
        if titled:
            blocks.append(ItemList(title="Sections of its docs", total=len(sections), items=tuple(
                Item(label=s.title, detail=s.page_title if s.page_title != s.title else None) for s in titled)))
            topics = [{"title": s.title, "section": s.location, "command": f"runbook {key} {s.title}"} for s in titled]
        blocks.append(Actions(actions=(*(RunCommand(label=t["title"][:70], command=t["command"]) for t in topics[:5]),
                                       RunCommand(label="Its docs", command=f"docs {key}"))))
    return Reply.notice(Status.NOT_FOUND, text, *blocks, data={"entity": key, "section": None, "topics": topics},
                        subject=key)


class _Answer:
    """What every runbook answer carries around the steps: who owns the entity, who is on call,
    the notes on how the question was read."""

    def __init__(self, deps: Deps, inv: Invocation, entity: Entity, contact: list[tuple[str, str]],
                 link_books: list[tuple[str, str]], typo: str | None, failed: Notice | None) -> None:
        self.deps, self.inv, self.entity = deps, inv, entity
        self.contact, self.link_books, self.typo, self.failed = contact, link_books, typo, failed

    @property
    def key(self) -> str:
        return self.entity.ref.key

    async def tail(self) -> list[Block]:
        """The owner's contacts and who is on call, under the steps."""
        blocks: list[Block] = []
        if self.contact:
            blocks.append(Fields(pairs=tuple(self.contact)))
        blocks.extend(await _oncall(self.deps, self.entity, self.inv))
        return blocks

    async def linked(self) -> Reply:
        """The runbook is a link to somewhere else."""
        key = self.key
        blocks: list[Block] = [Header(text=f"Runbook: {name_of(key)}", subtitle=describe_ref(key))]
        blocks += [Notice(level="info", text=n) for n in (self.typo,) if n]
        blocks += [b for b in (self.failed,) if b is not None]
        blocks.append(Text(text="The runbook is kept outside Callboard's docs; open it here:"))
        blocks.append(Links(links=tuple(self.link_books)))
        blocks.extend(await self.tail())
        return Reply(status=Status.OK, blocks=tuple(blocks), summary=f"Runbook of {name_of(key)}: {self.link_books[0][1]}",
                     subject=key, data={"entity": key, "links": [u for _, u in self.link_books], "section": None,
                                        "url": self.link_books[0][1], "source": "links"})

    async def section(
        self, docs: TechDocs, section: Section, *, title: str, notes: list[str], own: bool = False,
        topics: list[Section] | None = None, source: str, topic: str = "", list_topics: bool = True,
    ) -> Reply:
        """One section's content, inline, with its full page's URL; the other ``topics`` as
        commands (and listed after it with ``list_topics``)."""
        key = self.key
        url = docs.link(key, section.location)
        blocks: list[Block] = [Header(text=title, subtitle=describe_ref(key))]
        blocks += [Notice(level="info", text=n) for n in (self.typo, *notes) if n]
        blocks += [b for b in (self.failed,) if b is not None]
        parts = await docs.parts(key, section.location, own=own)
        blocks.extend(_blocks(parts) if parts else [Text(text=section.text)] if section.text else [])
        every = topics or []
        listed = [s for s in every if s.location != section.location]
        if listed and list_topics:  # (a runbook of one topic has no list)
            blocks.append(ItemList(title="Topics", items=tuple(
                Item(label=s.title, detail=("shown above" if s.location == section.location else None)) for s in every)))
        blocks.extend(await self.tail())
        blocks.append(Links(links=(("Full page", url), *self.link_books)))
        if listed:
            blocks.append(Actions(actions=tuple(
                RunCommand(label=s.title[:70], command=_topic_command(key, s.title)) for s in listed[:_MAX_TOPIC_BUTTONS])))
        data: dict[str, object] = {
            "entity": key, "section": section.location, "title": section.title, "where": _where(section),
            "url": url, "source": source, "topic": topic or None,
        }
        if topics:
            data["topics"] = [{"title": s.title, "section": s.location, "url": docs.link(key, s.location),
                               "command": _topic_command(key, s.title)} for s in topics]
        return Reply(status=Status.OK, blocks=tuple(blocks), subject=key, data=data,
                     summary=f"{title} ({url})")


async def _from_runbook(
    answer: _Answer, docs: TechDocs, chosen: list[Section], sections: list[Section], topic: str, source: str | None
) -> Reply:
    key = answer.key
    name = name_of(key)
    head, listed = topics(chosen)
    origin = source or "techdocs"
    if topic:
        wanted = _words(topic)
        exact = next((s for s in chosen if wanted and _words(s.title) == wanted), None)
        if exact is not None:
            return await answer.section(docs, exact, title=f"Runbook: {name} › {exact.title}", notes=[],
                                        topics=listed, list_topics=False, source=origin, topic=topic)
        hits = await docs.search(topic, entity=key, limit=20)
        in_runbook = {s.location: s for s in chosen}
        hit = next((h for h in hits if h.location in in_runbook), None)
        if hit is not None:
            s = in_runbook[hit.location]
            return await answer.section(docs, s, title=f"Runbook: {name} › {s.title}", notes=[], source=origin,
                                        topics=listed, list_topics=False, topic=topic)
        best = next((s for h in hits for s in sections if s.location == h.location), None)
        if best is not None:
            note = f'The runbook has no section on "{topic}"; this is the closest section of its docs: {_where(best)}.'
            return await answer.section(docs, best, title=f"{name} docs › {best.title}", notes=[note], source="docs",
                                        topic=topic)
        note = f'Nothing in the runbook or the docs of {name} matches "{topic}"; here are the runbook\'s topics.'
        return await _overview(answer, docs, chosen, head, listed, origin, [note], topic)
    return await _overview(answer, docs, chosen, head, listed, origin, [], topic)


async def _overview(
    answer: _Answer, docs: TechDocs, chosen: list[Section], head: Section | None, listed: list[Section],
    source: str, notes: list[str], topic: str,
) -> Reply:
    """The runbook without a topic: its introduction (its first topic when it has none) and the
    list of its topics."""
    name = name_of(answer.key)
    if head is not None:
        intro = await docs.parts(answer.key, head.location, own=True)
        if intro or not listed:
            return await answer.section(docs, head, title=f"Runbook: {name}", notes=notes, own=True,
                                        topics=listed, source=source, topic=topic)
    first = listed[0] if listed else chosen[0]
    return await answer.section(docs, first, title=f"Runbook: {name} › {first.title}" if first.title else f"Runbook: {name}",
                                notes=notes, topics=listed, source=source, topic=topic)


async def _from_docs(answer: _Answer, docs: TechDocs, sections: list[Section], topic: str) -> Reply:
    """No runbook page: the section of the entity's docs that best matches the topic."""
    key = answer.key
    name = name_of(key)
    wanted = _words(topic)
    best = next((s for s in sections if wanted and _words(s.title) == wanted), None)
    if best is None:
        hits = await docs.search(topic, entity=key, limit=1)
        best = next((s for h in hits for s in sections if s.location == h.location), None)
    if best is None:
        text = (f'{describe_ref(key)} has no runbook page, and nothing in its docs matches "{topic}". '
                f"`docs {name}` lists what its docs cover.")
        blocks: list[Block] = [b for b in (answer.failed,) if b is not None]
        blocks.extend(await answer.tail())
        blocks.append(Actions(actions=(RunCommand(label="Its docs", command=f"docs {key}"),)))
        return Reply.notice(Status.NOT_FOUND, text, *blocks,
                            data={"entity": key, "section": None, "topic": topic}, subject=key)
    note = f"{name} has no runbook page; this is the closest section of its docs: {_where(best)}."
    return await answer.section(docs, best, title=f"{name} docs › {best.title or best.page_title}", notes=[note],
                                source="docs", topic=topic)


async def _oncall(deps: Deps, entity: Entity, inv: Invocation) -> list[Block]:
    """Who to page, right under the steps."""
    if deps.oncall is None:
        return []
    resolution = await deps.oncall.resolve(deps.catalog, entity)
    if resolution.answer is None and not resolution.failures:
        return []  # no on-call source knows this entity: the owner's contacts above say it all
    return await oncall_blocks(deps, resolution, inv.tz)


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
