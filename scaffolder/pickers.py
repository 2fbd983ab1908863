"""The options of Backstage's entity pickers, from the catalog: what a person may choose as they type.

``EntityPicker`` and ``OwnerPicker`` search the catalog (the fuzzy index) among the field's kinds
(``allowedKinds``, or the kinds its ``catalogFilter`` names; ``OwnerPicker``: groups and users),
keeping only entities that pass its ``catalogFilter``; ``OwnedEntityPicker`` offers what the
person or their teams own; ``EntityTagsPicker`` the tags entities already carry, most used first
(counted in the database). In every picker the person's own teams come first. A pure helper
(``rank``) orders and labels; the catalog reads are the only I/O.
"""

from __future__ import annotations


from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rapidfuzz import fuzz

from callboard.catalog.service import Catalog
from callboard.commands.forms import Choice

from .forms import TAG, FieldSpec

__all__ = ["CatalogPickers", "matches_filter", "rank"]

_EXISTS = "CATALOG_FILTER_EXISTS"


def _kind(key: str) -> str:
    return key.split(":", 1)[0]


def _name(key: str) -> str:
    return key.split("/", 1)[-1]


def _label(key: str, title: str | None = None, *, team: bool = False) -> str:
    label = f"{_name(key)} ({_kind(key)})"
    if title and title != _name(key):
        label += f" · {title}"
    return label + (" · your team" if team else "")


def _like(query: str, key: str, title: str | None) -> bool:
    """Whether a team (or an owned entity) matches what was typed: a word of it, or close to it."""
    q = query.strip().lower()
    if not q:
        return True
    texts = [_name(key), key, (title or "").lower()]
    return any(q in t for t in texts) or max(fuzz.partial_ratio(q, t) for t in texts if t) >= 80


def _lookup(data: Mapping[str, Any], path: str) -> list[Any]:
    node: Any = data
    for part in path.split("."):
        if isinstance(node, Mapping):
            node = node.get(part)
        else:
            return []
    if node is None:
        return []
    return list(node) if isinstance(node, list) else [node]


def matches_filter(data: Mapping[str, Any], catalog_filter: Any) -> bool:
    """Backstage's ``catalogFilter``: a mapping (every key matches) or a list of them (any matches);
    values compared without case, a list value is any of, ``CATALOG_FILTER_EXISTS`` is present."""
    filters = catalog_filter if isinstance(catalog_filter, list) else [catalog_filter]
    filters = [f for f in filters if isinstance(f, Mapping)]
    if not filters:
        return True
    for f in filters:
        ok = True
        for path, want in f.items():
            found = [str(v).lower() for v in _lookup(data, str(path))]
            if want == _EXISTS:
                ok = bool(found)
            else:
                wanted = [str(w).lower() for w in (want if isinstance(want, list) else [want])]
                ok = any(w in found for w in wanted)
            if not ok:
                break
        if ok:
            return True
    return False


def rank(teams: Sequence[tuple[str, str | None]], found: Iterable[tuple[str, str | None]], *, query: str,
         kinds: Sequence[str], limit: int) -> list[Choice]:
    """The person's teams (of the field's kinds, matching ``query``) first, then what the catalog
    found, each once, labelled ``name (kind) · title``."""
    allowed = {k.lower() for k in kinds}
    out: dict[str, Choice] = {}
    for key, title in teams:
        if (not allowed or _kind(key) in allowed) and _like(query, key, title):
            out.setdefault(key, Choice(value=key, label=_label(key, title, team=True)))
    for key, title in found:
        if not allowed or _kind(key) in allowed:
            out.setdefault(key, Choice(value=key, label=_label(key, title)))
    return list(out.values())[:limit]


class CatalogPickers:
    """Picker options from one catalog (``hosts``: the repository hosts the config knows)."""

    def __init__(self, catalog: Catalog, *, hosts: Sequence[str] = ("github.com",)) -> None:
        self.catalog = catalog
        self.hosts = tuple(hosts)

    def known(self, key: str) -> bool:
        return key.lower() in self.catalog.index

    async def teams(self, user_ref: str | None) -> list[tuple[str, str | None]]:
        """The person's groups as (ref, title)."""
        if not user_ref:
            return []
        me = await self.catalog.get(user_ref)
        if me is None:
            return []
        groups = await self.catalog.get_many(me.related("memberOf"))
        return [(key, groups[key].title if key in groups else None) for key in me.related("memberOf")]

    async def tags(self, spec: FieldSpec, query: str, *, limit: int = 50) -> list[Choice]:
        """EntityTagsPicker: the tags the catalog already uses, most used first, of the entities
        of ``ui:options.kinds`` (all when not given), holding what was typed; labelled with their
        count when ``showCounts`` is set, as Backstage's picker does."""
        raw = spec.options.get("kinds")
        kinds = [str(k) for k in raw] if isinstance(raw, list) else []
        typed = query.strip().lower()
        counted = await self.catalog.tags(kinds=kinds, contains=typed, limit=limit)
        show = spec.options.get("showCounts") is True
        known = [Choice(value=tag, label=f"{tag} ({n})" if show else tag) for tag, n in counted]
        if typed and len(typed) <= 63 and TAG.match(typed) and all(c.value != typed for c in known):
            # a tag nobody uses yet is still a tag (Backstage's picker takes free text too)
            known.append(Choice(value=typed, label=f"{typed} (new)"))
        return known[:limit]

    async def options(self, spec: FieldSpec, query: str, user_ref: str | None, *, limit: int = 50) -> list[Choice]:
        kinds = spec.field.kinds
        catalog_filter = spec.options.get("catalogFilter")
        teams = await self.teams(user_ref)
        if catalog_filter:
            team_docs = await self.catalog.get_many([k for k, _ in teams])
            teams = [(k, t) for k, t in teams if k in team_docs and matches_filter(team_docs[k].data, catalog_filter)]
        if spec.picker == "EntityTagsPicker":
            return await self.tags(spec, query, limit=limit)
        if spec.picker == "OwnedEntityPicker":
            owners = [user_ref] if user_ref else []
            owners += [k for k, _ in await self.teams(user_ref)]
            people = await self.catalog.get_many(owners, relations=True)
            owned = list(dict.fromkeys(k for o in owners if o in people for k in people[o].related("ownerOf")))
            docs = await self.catalog.get_many(owned)
            found = [(k, docs[k].title) for k in owned if k in docs
                     and (not catalog_filter or matches_filter(docs[k].data, catalog_filter))
                     and _like(query, k, docs[k].title)]
            return rank([], found, query=query, kinds=kinds, limit=limit)
        found_keys: list[tuple[str, str | None]] = []
        if query.strip():
            result = self.catalog.search(query, kinds=[k.lower() for k in kinds] or None, limit=limit)
            found_keys = [(c.key, c.title) for c in result.candidates]
            if catalog_filter:
                docs = await self.catalog.get_many(k for k, _ in found_keys)
                found_keys = [(k, t) for k, t in found_keys if k in docs and matches_filter(docs[k].data, catalog_filter)]
        return rank(teams, found_keys, query=query, kinds=kinds, limit=limit)
