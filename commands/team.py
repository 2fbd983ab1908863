"""``team <group>``: members, sub-teams, parent and what the team owns."""

from __future__ import annotations

from typing import Any

from ._cards import Listing, fields_data, listing_blocks
from ._lookup import describe_ref, entity_from, name_of, typo_note
from .api import Block, CommandSpec, Deps, Fields, Grammar, Header, Invocation, Notice, Reply, Status
from .owner import contact_fields

__all__ = ["SPEC", "run"]

_LIMIT = 500


async def run(inv: Invocation, deps: Deps) -> Reply:
    g, query = await entity_from(inv, deps, usage=SPEC.usage, kinds=("group",))
    members = g.related("hasMember")
    owned = g.related("ownerOf")
    blocks: list[Block] = [Header(text=g.display_name, subtitle=describe_ref(g.ref.key))]
    data: dict[str, Any] = {"entity": g.ref.key}
    note = typo_note(g, query)
    if note:
        blocks.append(Notice(level="info", text=note))
        data["note"] = note
    contact = contact_fields(g)
    if contact:
        blocks.append(Fields(pairs=tuple(contact)))
    data["fields"] = fields_data(contact)
    data["parent"] = g.related("childOf")
    lists, lists_data = await listing_blocks(deps, [
        Listing(key="members", title="Members", entries=tuple((k, None) for k in members), people=True),
        Listing(key="sub_teams", title="Sub-teams", entries=tuple((k, None) for k in g.related("parentOf")),
                show_kind=False, always=False),
        Listing(key="owns", title="Owns", entries=tuple((k, None) for k in owned), empty="nothing in the catalog"),
    ], limit=_LIMIT)
    blocks.extend(lists)
    data.update(lists_data)
    return Reply(
        status=Status.OK,
        blocks=tuple(blocks),
        summary=f"{name_of(g.ref.key)}: {len(members)} members, owns {len(owned)}",
        subject=g.ref.key,
        data=data,
    )


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
