"""``owner <entity>``: who owns it and how to reach them; for a group or user, what it owns."""

from __future__ import annotations

from callboard.catalog.model import Entity

from ._cards import fields_data
from ._lookup import describe_ref, kind_of, name_of, resolve, typo_note
from .api import CommandSpec, Grammar, Deps, Fields, Header, Invocation, Item, ItemList, Notice, Reply, Status

__all__ = ["SPEC", "run", "contact_fields"]

_LIST_LIMIT = 500


def contact_fields(owner: Entity) -> list[tuple[str, str]]:
    """Display name, email, chat channel and parent group of a group or user."""
    fields: list[tuple[str, str]] = []
    profile = owner.spec.get("profile") if isinstance(owner.spec.get("profile"), dict) else {}
    if owner.display_name != owner.ref.name:
        fields.append(("Name", owner.display_name))
    email = profile.get("email") if isinstance(profile, dict) else None
    if isinstance(email, str) and email:
        fields.append(("Email", email))
    annotations = owner.metadata.get("annotations") or {}
    for key in ("callboard.io/slack-channel", "slack.com/channel-name", "callboard.io/teams-channel"):
        value = annotations.get(key) if isinstance(annotations, dict) else None
        if isinstance(value, str) and value:
            fields.append(("Channel", value))
            break
    parents = owner.related("childOf")
    if parents:
        fields.append(("Parent group", ", ".join(name_of(p) for p in parents)))
    return fields


async def run(inv: Invocation, deps: Deps) -> Reply:
    query = " ".join(inv.args).strip()
    if not query:
        return Reply.notice(Status.USAGE, f"Usage: {SPEC.usage}")
    key = resolve(deps, query, command="owner")
    entity, known = await deps.catalog.get_with(key, "ownedBy")
    if entity is None:  # removed by a sync since the index answered
        return Reply.notice(Status.NOT_FOUND, f'"{query}" was just removed from the catalog.')
    note = typo_note(entity, query)
    if entity.ref.kind.lower() in ("group", "user"):
        return await _owned_by(entity, deps, note)
    owners = entity.related("ownedBy")
    if not owners:
        return Reply.notice(
            Status.NOT_FOUND,
            f"{describe_ref(entity.ref.key)} has no owner in the catalog (a {entity.kind} has no spec.owner).",
            data={"entity": entity.ref.key, "owners": []},
        )
    blocks: list = [Header(text=f"{describe_ref(entity.ref.key)} is owned by " + ", ".join(
        (known[o].display_name if o in known else name_of(o)) for o in owners))]
    if note:
        blocks.append(Notice(level="info", text=note))
    data_owners = []
    for key in owners:
        owner = known.get(key)
        if owner is None:
            blocks.append(
                Notice(
                    level="warning",
                    text=f"The owner {key} is not in the catalog (a dangling reference in "
                    f"{entity.file or 'its file'}); there is nobody to contact through it.",
                )
            )
            data_owners.append({"ref": key, "exists": False})
            continue
        fields = [("Owner", f"{kind_of(key)} {name_of(key)}"), *contact_fields(owner)]
        blocks.append(Fields(pairs=tuple(fields)))
        data_owners.append({"ref": key, "exists": True, **{k.lower().replace(" ", "_"): v for k, v in fields[1:]}})
    summary = f"{name_of(entity.ref.key)} is owned by " + ", ".join(name_of(o) for o in owners)
    return Reply(
        status=Status.OK,
        blocks=tuple(blocks),
        summary=summary,
        subject=entity.ref.key,
        data={"entity": entity.ref.key, "owners": data_owners},
    )


async def _owned_by(entity: Entity, deps: Deps, note: str | None) -> Reply:
    owned = entity.related("ownerOf")
    items = tuple(Item(label=name_of(k), ref=k, detail=kind_of(k)) for k in owned[:_LIST_LIMIT])
    blocks: list = [Header(text=f"{describe_ref(entity.ref.key)} owns {len(owned)} entit{'y' if len(owned) == 1 else 'ies'}")]
    if note:
        blocks.append(Notice(level="info", text=note))
    contact = contact_fields(entity)
    if contact:
        blocks.append(Fields(pairs=tuple(contact)))
    blocks.append(ItemList(title="Owns", items=items, total=len(owned), empty="nothing in the catalog"))
    return Reply(
        status=Status.OK,
        blocks=tuple(blocks),
        summary=f"{name_of(entity.ref.key)} owns {len(owned)} entities",
        subject=entity.ref.key,
        data={"entity": entity.ref.key, "owns": owned, "fields": fields_data(contact)},
    )


SPEC = CommandSpec(
    name="owner",
    summary="Who owns an entity, and how to reach them (for a team or person: what they own)",
    usage="owner <entity>",
    examples=("owner payment-service", "who owns checkout-api?", "what does payments-team own?",
              "who is the owner of the payment-service service?"),
    run=run,
    aliases=("owners",),
    grammar=Grammar(
        phrasings=(
            "(who|which team|what team|which group|which person) (owns|own|maintains|runs|supports|looks after|"
            "is responsible for|are responsible for|is in charge of|takes care of) {entity}",
            "[who is|who are|what is|what are] (owner|owners|owning team|maintainer|maintainers) (of|for) {entity}",
            "(who|what) (is|are) {entity} 's (owner|owners|owning team|maintainer|maintainers)",
            "(who|what) (is|are) {entity} (owner|owners|owning team|maintainers)",
            "{entity} 's (owner|owners|owning team|maintainer|maintainers)",
            "{entity} (owner|owners)",
            "who (do|should|can) (I|we) (ask|contact|talk to|reach) (about|for|regarding) {entity}",
            "what (does|do|did) {entity} (own|maintain)",
            "what is {entity} (owning|responsible for)",
        ),
        stop_words=("currently", "right now", "now", "these days", "today"),
    ),
)
