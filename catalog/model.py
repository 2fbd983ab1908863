"""The catalog's values: entity refs, relations, processed entities and problems.

Everything here is a frozen value with no I/O, so it can cross process
boundaries (the parse workers pickle it) and be compared in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_NAMESPACE",
    "KINDS",
    "LocationTarget",
    "SyncSummary",
    "UnchangedDocument",
    "RELATION_PAIRS",
    "INVERSE",
    "CatalogError",
    "Entity",
    "EntityRef",
    "ProcessedEntity",
    "Relation",
    "RefParseError",
    "parse_ref",
]

DEFAULT_NAMESPACE = "default"

#: The kinds Backstage ships with (kind names are case-sensitive).
KINDS = ("API", "Component", "Domain", "Group", "Location", "Resource", "System", "Template", "User")

#: Every relation type with its opposite, as in @backstage/catalog-model.
RELATION_PAIRS = (
    ("ownedBy", "ownerOf"),
    ("partOf", "hasPart"),
    ("providesApi", "apiProvidedBy"),
    ("consumesApi", "apiConsumedBy"),
    ("dependsOn", "dependencyOf"),
    ("memberOf", "hasMember"),
    ("childOf", "parentOf"),
)
INVERSE: dict[str, str] = {}
for _a, _b in RELATION_PAIRS:
    INVERSE[_a] = _b
    INVERSE[_b] = _a


class RefParseError(ValueError):
    """A string that cannot be read as an entity ref (carries a plain message)."""


@dataclass(frozen=True, slots=True, order=True)
class EntityRef:
    """``kind:namespace/name``. Compared case-insensitively, displayed as written."""

    kind: str
    namespace: str
    name: str

    @property
    def key(self) -> str:
        """The canonical lower-cased form used for storage and comparison."""
        return f"{self.kind}:{self.namespace}/{self.name}".lower()

    def __str__(self) -> str:
        return f"{self.kind.lower()}:{self.namespace}/{self.name}"

    def __reduce__(self) -> tuple[type[EntityRef], tuple[str, str, str]]:
        # plain constructor call: unpickling a slotted dataclass field by field is ~10x slower,
        # and parse workers send 100k of these per sync
        return (EntityRef, (self.kind, self.namespace, self.name))


def parse_ref(
    text: str,
    *,
    default_kind: str | None = None,
    default_namespace: str = DEFAULT_NAMESPACE,
) -> EntityRef:
    """Parse ``[kind:][namespace/]name`` as Backstage's ``parseEntityRef`` does
    (``packages/catalog-model/src/entity/ref.ts``).

    The kind ends at the first ``:`` and the namespace at the first ``/``; everything after them is
    the name, which may itself hold ``:`` and ``/``: ``a:b:c`` is kind ``a``, name ``b:c``;
    ``a:b/c:d`` is kind ``a``, namespace ``b``, name ``c:d``. A ``/`` before the first ``:`` means
    there is no kind: ``a/b:c`` is namespace ``a``, name ``b:c``. An empty part is an error, and so
    is a missing kind without ``default_kind``. The text is taken as it is (no trimming: a quoted
    ``" team-a"`` names ``" team-a"``, as in Backstage). No entity can be named with ``:`` or ``/``
    (``metadata.name`` forbids them), so such refs only ever dangle.
    """
    if not isinstance(text, str):
        raise RefParseError(f"Entity reference must be a string, got {type(text).__name__}")
    if not text:
        raise RefParseError("Entity reference must not be empty")
    colon = text.find(":")
    slash = text.find("/")
    if slash != -1 and slash < colon:  # the / comes first: the rest, colons and all, is the name
        colon = -1
    kind = text[:colon] if colon != -1 else None
    namespace = text[colon + 1:slash] if slash != -1 else None
    name = text[max(colon + 1, slash + 1):]
    if kind == "" or namespace == "" or name == "":
        raise RefParseError(f'Entity reference "{text}" was not on the form [<kind>:][<namespace>/]<name>')
    kind = kind if kind is not None else default_kind
    namespace = namespace if namespace is not None else (default_namespace or DEFAULT_NAMESPACE)
    if not kind:
        raise RefParseError(
            f'Entity reference "{text}" had missing or empty kind '
            '(e.g. did not start with "component:" or similar)'
        )
    if not namespace:
        raise RefParseError(f'Entity reference "{text}" had missing or empty namespace')
    return EntityRef(kind, namespace, name)


@dataclass(frozen=True, slots=True, order=True)
class Relation:
    """A directed edge ``source --type--> target`` (refs in canonical key form)."""

    source: str
    type: str
    target: str

    def inverse(self) -> Relation:
        return Relation(self.target, INVERSE[self.type], self.source)


@dataclass(frozen=True, slots=True)
class CatalogError:
    """An expected failure: shown to the user, stored with its location, never raised.

    ``name`` follows Backstage's error names (InputError, NotFoundError, ...).
    """

    file: str
    message: str
    line: int | None = None
    entity: str | None = None
    name: str = "InputError"
    location: str | None = None

    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        who = f" [{self.entity}]" if self.entity else ""
        return f"{self.where()}{who}: {self.message}"


@dataclass(frozen=True, slots=True)
class LocationTarget:
    """A target a Location entity asks to follow. ``pattern``: the glob this target is one match
    of (the file source expands a glob target into one target per matching file), else None."""

    type: str
    target: str
    presence: str = "required"
    pattern: str | None = None


@dataclass(frozen=True, slots=True)
class ProcessedEntity:
    """One entity after parsing, substitution, validation and relation emission.

    ``data_json`` is the final entity document as JSON (namespace defaulted,
    placeholders substituted); ``raw_json`` is the document as read, or None
    when it is the same. ``relations`` are the relations this entity emitted
    (outgoing; the inverse side is derived when reading). Strings rather than
    dicts: they are what storage writes and they pickle cheaply from workers.
    """

    ref: EntityRef
    title: str | None
    data_json: str
    raw_json: str | None
    relations: tuple[tuple[str, str, str], ...]  # (source, type, target), outgoing
    file: str
    line: int
    hash: str
    targets: tuple[LocationTarget, ...] = ()
    source_hash: str | None = None
    key: str = ""  # ref.key, computed once (the sync reads it many times per entity)

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", self.ref.key)

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            ProcessedEntity,
            (self.ref, self.title, self.data_json, self.raw_json, self.relations, self.file, self.line,
             self.hash, self.targets, self.source_hash, self.key),
        )


@dataclass(frozen=True, slots=True)
class UnchangedDocument:
    """A document whose text is byte-for-byte what produced ``key`` last time: not parsed again."""

    key: str
    line: int


@dataclass(frozen=True, slots=True)
class Entity:
    """An entity as the portal answers with it: its document plus all its relations.

    ``relations`` includes both the relations it emitted and the inverse of
    those other entities emitted towards it, as Backstage's stitched entity does.
    """

    ref: EntityRef
    data: dict[str, Any]
    relations: tuple[Relation, ...] = ()
    location: str | None = None
    file: str | None = None
    line: int | None = None

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", self.ref.kind))

    @property
    def metadata(self) -> dict[str, Any]:
        meta = self.data.get("metadata")
        return meta if isinstance(meta, dict) else {}

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.data.get("spec")
        return spec if isinstance(spec, dict) else {}

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def title(self) -> str | None:
        title = self.metadata.get("title")
        return title if isinstance(title, str) and title else None

    @property
    def display_name(self) -> str:
        profile = self.spec.get("profile")
        if isinstance(profile, dict):
            dn = profile.get("displayName")
            if isinstance(dn, str) and dn:
                return dn
        return self.title or self.ref.name

    @property
    def email(self) -> str | None:
        profile = self.spec.get("profile")
        if isinstance(profile, dict) and isinstance(profile.get("email"), str) and profile["email"]:
            return str(profile["email"])
        return None

    @property
    def description(self) -> str | None:
        desc = self.metadata.get("description")
        return desc if isinstance(desc, str) and desc else None

    def related(self, rel_type: str) -> list[str]:
        """Target keys of this entity's relations of one type, sorted."""
        return sorted(r.target for r in self.relations if r.type == rel_type)


@dataclass(frozen=True, slots=True)
class SyncSummary:
    """What one sync did."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    locations: int = 0
    errors: tuple[CatalogError, ...] = field(default=())
    #: locations nothing could be read from in this sync (unreachable, missing, refused, no document
    #: parsed), as the errors name them: the rest of the catalog was synced without them
    unread: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.errors
