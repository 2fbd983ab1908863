"""Relations each built-in kind emits, as Backstage's BuiltinKindsEntityProcessor does.

Short refs in spec fields are resolved with the field's default kind and the
*containing entity's* namespace. Targets are not checked for existence here:
dangling targets are kept (and reported by the sync).
"""

from __future__ import annotations

from typing import Any

from .model import EntityRef, Relation, RefParseError, parse_ref

__all__ = ["RELATION_FIELDS", "emit_relations", "resolve_field"]

#: kind -> (spec field, default kind or None, relation type, inverse type)
RELATION_FIELDS: dict[str, tuple[tuple[str, str | None, str, str], ...]] = {
    "Component": (
        ("owner", "Group", "ownedBy", "ownerOf"),
        ("subcomponentOf", "Component", "partOf", "hasPart"),
        ("providesApis", "API", "providesApi", "apiProvidedBy"),
        ("consumesApis", "API", "consumesApi", "apiConsumedBy"),
        ("dependsOn", None, "dependsOn", "dependencyOf"),
        ("dependencyOf", None, "dependencyOf", "dependsOn"),
        ("system", "System", "partOf", "hasPart"),
    ),
    "API": (
        ("owner", "Group", "ownedBy", "ownerOf"),
        ("system", "System", "partOf", "hasPart"),
    ),
    "Resource": (
        ("owner", "Group", "ownedBy", "ownerOf"),
        ("dependsOn", None, "dependsOn", "dependencyOf"),
        ("dependencyOf", None, "dependencyOf", "dependsOn"),
        ("system", "System", "partOf", "hasPart"),
    ),
    "System": (
        ("owner", "Group", "ownedBy", "ownerOf"),
        ("domain", "Domain", "partOf", "hasPart"),
    ),
    "Domain": (
        ("owner", "Group", "ownedBy", "ownerOf"),
        ("subdomainOf", "Domain", "partOf", "hasPart"),
    ),
    "User": (("memberOf", "Group", "memberOf", "hasMember"),),
    "Group": (
        ("parent", "Group", "childOf", "parentOf"),
        ("children", "Group", "parentOf", "childOf"),
        ("members", "User", "hasMember", "memberOf"),
    ),
    "Template": (("owner", "Group", "ownedBy", "ownerOf"),),
}


def resolve_field(value: Any, default_kind: str | None, namespace: str) -> list[EntityRef]:
    """Refs named by one spec field (a string or a list of strings)."""
    items = value if isinstance(value, list) else [value]
    refs = []
    for item in items:
        if item is None:
            continue
        refs.append(parse_ref(item, default_kind=default_kind, default_namespace=namespace))
    return refs


def emit_relations(kind: str, namespace: str, self_key: str, spec: dict[str, Any]) -> tuple[Relation, ...]:
    """Relations one entity emits. A field that names no valid ref raises ``RefParseError``
    naming the field (as ``location_targets`` does); the processing turns it into the
    entity's ``CatalogError``.

    Backstage stores each relation twice (``self --type--> target`` and
    ``target --inverse--> self``). Callboard stores the first only and derives
    the inverse when reading (see ``Relation.inverse``): half the rows to write.
    """
    out: list[Relation] = []
    for field, default_kind, rel, _inverse in RELATION_FIELDS.get(kind, ()):
        value = spec.get(field)
        if value is None:
            continue
        try:
            targets = resolve_field(value, default_kind, namespace)
        except RefParseError as exc:
            raise RefParseError(f"spec.{field}: {exc}") from exc
        for target in targets:
            key = target.key
            out.append(Relation(self_key, rel, key))
    return tuple(out)
