"""``mine``: what my teams own (the asker is mapped to a catalog User by the chat surface)."""

from __future__ import annotations

from ._lookup import kind_of, name_of
from .api import CommandSpec, Grammar, Deps, Header, Invocation, Item, ItemList, Reply, Status

__all__ = ["SPEC", "run"]


async def run(inv: Invocation, deps: Deps) -> Reply:
    if not inv.identified:
        return Reply.notice(
            Status.ERROR,
            f"I can't tell who you are right now: {inv.platform} did not answer when I asked for your profile. "
            "Try again in a minute, or ask `team <your team>`.",
        )
    if not inv.user_ref:
        return Reply.notice(
            Status.NOT_FOUND,
            "I can't tell who you are in the catalog: no catalog User has your email (in Slack, your "
            "profile's email; in the terminal, CALLBOARD_USER_EMAIL). Ask `team <your team>` instead.",
        )
    me = await deps.catalog.get(inv.user_ref)
    if me is None:
        return Reply.notice(Status.NOT_FOUND, f"Your catalog user {inv.user_ref} is no longer in the catalog.")
    teams = me.related("memberOf")
    blocks: list = [Header(text=f"What {me.display_name}'s teams own")]
    owned_all: dict[str, list[str]] = {}
    personal = me.related("ownerOf")
    if personal:
        owned_all[me.ref.key] = personal
    groups = {}
    for key in teams:
        group = await deps.catalog.get(key)
        if group is not None:
            groups[key] = group
            owned_all[key] = group.related("ownerOf")
    if not owned_all:
        return Reply.notice(Status.NOT_FOUND, f"{me.display_name} is in no team that owns anything in the catalog.",
                            data={"user": me.ref.key, "teams": teams, "owns": {}})
    for key, owned in owned_all.items():
        title = "You" if key == me.ref.key else (groups[key].display_name if key in groups else name_of(key))
        blocks.append(ItemList(title=f"{title} ({name_of(key)})" if key != me.ref.key else title,
                               items=tuple(Item(label=name_of(k), ref=k, detail=kind_of(k)) for k in owned),
                               total=len(owned), empty="nothing in the catalog"))
    total = sum(len(v) for v in owned_all.values())
    return Reply(status=Status.OK, blocks=tuple(blocks), summary=f"Your teams own {total} entities",
                 data={"user": me.ref.key, "teams": teams, "owns": owned_all})


SPEC = CommandSpec(
    name="mine",
    summary="What my teams own",
    usage="mine",
    examples=("mine", "what do my teams own?", "what do I own?"),
    run=run,
    grammar=Grammar(
        phrasings=(
            "what (do|does) (I|we|my team|my teams|our team|our teams|me) own",
            "what (am I|are we|is my team|is our team|are my teams) (responsible for|owning|on the hook for)",
            "what (is|are) (mine|ours)",
            "(show|list) [me] (my|our) (stuff|services|components|entities|things)",
        ),
        args=(),
    ),
)
