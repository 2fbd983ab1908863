"""``find <query> [--kind K]``: search the catalog by name or title, typos and all."""

from __future__ import annotations

from callboard.catalog.service import Catalog

from ._lookup import candidate_item, kind_of
from .api import CommandSpec, Grammar, Deps, Invocation, ItemList, Reply, Status, Unanswered

__all__ = ["MAX_TYPED", "SPEC", "picker_options", "run"]

#: What a picker's text can be: longer than any name or title a person types, and a fuzzy search of a
#: megabyte someone sent as "typed so far" would hold the event loop for seconds.
MAX_TYPED = 256


def picker_options(catalog: Catalog, query: str, limit: int = 20,
                   kinds: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(ref, label) pairs for an entity picker, asked on every keystroke: the names and titles starting
    with ``query`` (or with a word starting with it) first, then ``find``'s fuzzy matches (of ``kinds``)."""
    if not query.strip() or len(query) > MAX_TYPED:
        return []
    result = catalog.complete(query, kinds=[k.lower() for k in kinds] or None, limit=limit)
    return [(c.key, f"{c.name} ({kind_of(c.key)})" + (f" · {c.title}" if c.title and c.title != c.name else ""))
            for c in result.candidates]


def _parse(args: tuple[str, ...]) -> tuple[str, list[str]]:
    """(query, kinds) from ``find``'s arguments; ``Unanswered`` with the usage when they are wrong."""
    kinds: list[str] = []
    words: list[str] = []
    it = iter(args)
    for arg in it:
        if arg in ("--kind", "-k"):
            value = next(it, None)
            if value is None:
                raise _usage("--kind needs a value, e.g. --kind component")
            kinds.extend(k.strip().lower() for k in value.split(",") if k.strip())
        elif arg.startswith("--kind="):
            kinds.extend(k.strip().lower() for k in arg.split("=", 1)[1].split(",") if k.strip())
        elif arg.startswith("--"):
            raise _usage(f"Unknown option {arg}; find takes --kind")
        else:
            words.append(arg)
    return " ".join(words).strip(), kinds


def _usage(problem: str) -> Unanswered:
    return Unanswered(Reply.notice(Status.USAGE, f"{problem}. Usage: {SPEC.usage}"))


async def run(inv: Invocation, deps: Deps) -> Reply:
    query, kinds = _parse(inv.args)
    if not query:
        return Reply.notice(Status.USAGE, f"Usage: {SPEC.usage}")
    result = deps.catalog.search(query, kinds=kinds or None, limit=10)
    kind_text = f" ({', '.join(kinds)})" if kinds else ""
    if not result.candidates:
        return Reply.notice(Status.NOT_FOUND, f'Nothing in the catalog matches "{query}"{kind_text}.',
                            data={"query": query, "results": []})
    items = tuple(candidate_item(c) for c in result.candidates)
    return Reply(
        status=Status.OK,
        blocks=(ItemList(title=f'Matches for "{query}"{kind_text}', items=items),),
        summary=f'{len(items)} match(es) for "{query}"',
        data={
            "query": query,
            "results": [{"ref": c.key, "name": c.name, "title": c.title, "score": round(c.score, 1)}
                        for c in result.candidates],
        },
    )


SPEC = CommandSpec(
    name="find",
    summary="Search the catalog by name or title (typos are fine)",
    usage="find <query> [--kind component|api|group|...]",
    examples=("find payment", "find checkout --kind api", "search for checkout"),
    run=run,
    aliases=("search",),
    grammar=Grammar(
        phrasings=(
            "(search|look|hunt) for {query}",
            "look up {query}",
            "where is {query}",
            "(is there|are there|do we have) (a|an|any) {query}",
        ),
        args=("{query}",),
        entity=None,
    ),
)
