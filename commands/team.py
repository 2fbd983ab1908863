"""``team <group>``: members, sub-teams, parent and what the team owns."""

from __future__ import annotations

from ._lookup import describe_ref, entity_from, kind_of, name_of, typo_note
from .api import Person, CommandSpec, Deps, Fields, Header, Invocation, Item, ItemList, Notice, Reply, Status
from .owner import contact_fields

__all__ = ["SPEC", "run"]

_LIMIT = 500


async def run(inv: Invocation, deps: Deps) -> Reply:
    g, query = await entity_from(inv, deps, usage=SPEC.usage, kinds=("group",))
    members = g.related("hasMember")
    children = g.related("parentOf")
    owned = g.related("ownerOf")
    people = await deps.catalog.get_many(members[:_LIMIT])
    blocks: list = [Header(text=g.display_name, subtitle=describe_ref(g.ref.key))]
    note = typo_note(g, query)
    if note:
        blocks.append(Notice(level="info", text=note))
    contact = contact_fields(g)
    if contact:
        blocks.append(Fields(pairs=tuple(contact)))
    member_items = []
    for key in members[:_LIMIT]:
        person = people.get(key)
        email = None
        if person is not None and isinstance(person.spec.get("profile"), dict):
            email = person.spec["profile"].get("email")
        label = person.display_name if person else name_of(key)
        email = email if isinstance(email, str) else None
        member_items.append(Item(label=label, ref=key, detail=email,
                                 person=Person(ref=key, name=label, email=email) if key.startswith("user:") else None))
    blocks.append(ItemList(title="Members", items=tuple(member_items), total=len(members)))
    if children:
        blocks.append(
            ItemList(title="Sub-teams", items=tuple(Item(label=name_of(k), ref=k) for k in children[:_LIMIT]),
                     total=len(children))
        )
    blocks.append(
        ItemList(title="Owns", items=tuple(Item(label=name_of(k), ref=k, detail=kind_of(k)) for k in owned[:_LIMIT]),
                 total=len(owned), empty="nothing in the catalog")
    )
    return Reply(
        status=Status.OK,
        blocks=tuple(blocks),
        summary=f"{name_of(g.ref.key)}: {len(members)} members, owns {len(owned)}",
        subject=g.ref.key,
        data={"entity": g.ref.key, "members": members, "sub_teams": children, "owns": owned},
    )


from .api import Grammar  # noqa: E402  (beside SPEC: the grammar is part of it)

SPEC = CommandSpec(
    name="team",
    summary="A team's members, sub-teams and what it owns",
    usage="team <group>",
    examples=("team payments-team", "who is on sre-team?", "who's in the payments team?"),
    run=run,
    aliases=("group",),
    grammar=Grammar(
        phrasings=(
            "who (is|are) (on|in|part of|a member of|members of|with) {entity}",
            "(members|people|folks|engineers|the people) (of|in|on) {entity}",
            "who (works|work) (in|for) {entity}",
            "(list|show|who are) [me] [the] (members|people) (of|in|on) {entity}",
            "who (belongs|belong) to {entity}",
            "{entity} 's (members|people|team members)",
            "{entity} (members|team members)",
        ),
        kinds=("group",),
    ),
)
