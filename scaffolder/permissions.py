"""Who may run which template: ``scaffolder.permissions`` in ``callboard.yaml``.

Each rule names templates (by name or ref, and/or by tag) and the groups whose members may run
them::

    scaffolder:
      permissions:
        - templates: [python-service]          # names or refs (template:default/python-service)
          tags: [production]                   # or any template carrying one of these tags
          groups: [platform-team, group:default/sre]

- A template no rule names may be run by everyone (the default: no rules, everything open).
- A template one or more rules name may be run by the members of any of those rules' groups
  (the rules add up; one that matches is enough).
- Membership counts down the group tree: a member of a group is also a member of every group
  above it (``spec.parent``), so allowing ``engineering`` allows its sub-teams' members. A person
  is a member of the groups their catalog User lists (``memberOf``) and of those listing them.
- Someone the catalog does not know (no catalog User) may run only what no rule names.

The check runs where a template is listed, when its form opens, and again when it is submitted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from callboard.catalog.model import RefParseError, parse_ref

from .model import TemplateDef

__all__ = ["PermissionRule", "Permissions", "may_run", "rules_from_config"]

#: How far up the group tree membership is followed (a guard against cycles in hand-made data).
_MAX_DEPTH = 20


@dataclass(frozen=True, slots=True)
class PermissionRule:
    templates: frozenset[str]  # template refs (template:<namespace>/<name>), lower case
    tags: frozenset[str]  # lower case
    groups: frozenset[str]  # group refs, lower case

    def names(self, template: TemplateDef) -> bool:
        return template.ref.lower() in self.templates or bool(self.tags & {t.lower() for t in template.tags})


def _refs(value: Any, where: str, kind: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{where} must be a list of {kind} names or refs, e.g. [my-{kind}, {kind}:default/other]")
    out = set()
    for i, item in enumerate(value):
        try:
            ref = parse_ref(item.strip(), default_kind=kind)
        except RefParseError as exc:
            raise ValueError(f"{where}[{i}]: {exc}") from None
        if ref.kind.lower() != kind:
            raise ValueError(f"{where}[{i}]: {item!r} is a {ref.kind}, not a {kind}")
        out.add(ref.key.lower())
    return frozenset(out)


def rules_from_config(value: Any, where: str = "scaffolder.permissions") -> tuple[PermissionRule, ...]:
    """The rules of ``scaffolder.permissions``; ``ValueError`` naming the key that is wrong."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list of rules, each with templates and/or tags, and groups")
    rules = []
    for i, raw in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(raw, Mapping):
            raise ValueError(f"{at} must be a mapping with templates and/or tags, and groups")
        unknown = sorted(set(raw) - {"templates", "tags", "groups"})
        if unknown:
            raise ValueError(f"{at}: unknown key {unknown[0]!r}; known: templates, tags, groups")
        templates = _refs(raw.get("templates"), f"{at}.templates", "template")
        tags = raw.get("tags")
        if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags)):
            raise ValueError(f"{at}.tags must be a list of tags, e.g. [production]")
        if not templates and not tags:
            raise ValueError(f"{at} names no template: give templates (names or refs) or tags")
        groups = _refs(raw.get("groups"), f"{at}.groups", "group")
        if not groups:
            raise ValueError(f"{at}.groups must list the groups whose members may run those templates")
        rules.append(PermissionRule(templates=templates, tags=frozenset(t.strip().lower() for t in tags or ()),
                                    groups=groups))
    return tuple(rules)


class _Entity(Protocol):
    def related(self, rel_type: str) -> list[str]: ...


class _Catalog(Protocol):
    async def get(self, key: str) -> Any: ...

    async def get_many(self, keys: Sequence[str], *, relations: bool = False) -> Mapping[str, Any]: ...


class Permissions:
    """The rules, checked against the catalog's groups."""

    def __init__(self, rules: Sequence[PermissionRule], catalog: _Catalog) -> None:
        self.rules = tuple(rules)
        self.catalog = catalog

    def restricted(self, template: TemplateDef) -> frozenset[str] | None:
        """The groups that may run ``template``; None when no rule names it (everyone may)."""
        matching = [r for r in self.rules if r.names(template)]
        if not matching:
            return None
        return frozenset().union(*(r.groups for r in matching))

    async def groups_of(self, user_ref: str) -> frozenset[str]:
        """Every group ``user_ref`` is a member of, the groups above their own included."""
        user = await self.catalog.get(user_ref)
        if user is None:
            return frozenset()
        found: set[str] = set(user.related("memberOf"))
        frontier = list(found)
        for _ in range(_MAX_DEPTH):
            if not frontier:
                break
            groups = await self.catalog.get_many(frontier, relations=True)
            parents = {p for g in groups.values() for p in g.related("childOf")} - found
            found |= parents
            frontier = list(parents)
        return frozenset(found)

    async def may_run(self, user_ref: str | None, template: TemplateDef) -> bool:
        allowed = self.restricted(template)
        if allowed is None:
            return True
        if not user_ref:
            return False
        return bool(allowed & await self.groups_of(user_ref))

    async def runnable(self, user_ref: str | None, templates: Sequence[TemplateDef]) -> list[TemplateDef]:
        """Those of ``templates`` ``user_ref`` may run (their groups looked up once)."""
        mine: frozenset[str] | None = None
        out = []
        for template in templates:
            allowed = self.restricted(template)
            if allowed is not None:
                if not user_ref:
                    continue
                if mine is None:
                    mine = await self.groups_of(user_ref)
                if not allowed & mine:
                    continue
            out.append(template)
        return out


async def may_run(app: Any, user_ref: str | None, template: TemplateDef) -> bool:
    """May ``user_ref`` run ``template`` in the Callboard ``app`` (its settings' rules, its catalog)?"""
    return await Permissions(app.settings.scaffolder_permissions, app.catalog).may_run(user_ref, template)
