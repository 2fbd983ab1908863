"""``oncall <entity|group> [next]``: who is on call now (each escalation level, until when), or
next; ``oncall mine``: my shifts. The answer says which step of the chain answered (the entity's
own annotation, its owner user, its system, its owner group or its owner's team, a parent
group — see ``providers.oncall.service``), and when every source fails it says so and gives the
owner's contacts instead — never an empty answer. ``data`` carries every shift as the text shows
it (name, email, role, schedule, catalog user)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callboard.catalog.model import Entity
from callboard.providers.oncall.model import Shift, by_level
from callboard.providers.oncall.service import Resolution

from ._cards import fields_data, person_email
from ._lookup import describe_ref, find_entity, name_of, typo_note
from .api import Block, CommandSpec, Deps, Fields, Grammar, Header, Invocation, Item, ItemList, Links, Notice, Person, Phrasing, Reply, Status
from .owner import contact_fields

__all__ = ["SPEC", "oncall_answer", "oncall_blocks", "run"]

_LEVELS = {1: "Primary", 2: "Secondary"}


def _zone(tz: str | None) -> ZoneInfo | None:
    if not tz:
        return None
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a "zone" too long to be a file name
        return None


def when(moment: datetime | None, tz: str | None) -> str:
    """A time in the asker's zone when known, else the machine's."""
    if moment is None:
        return "no end set"
    zone = _zone(tz)
    local = moment.astimezone(zone) if zone else moment.astimezone()
    return local.strftime("%a %d %b %H:%M %Z").strip()


async def _people(deps: Deps, shifts: Sequence[Shift]) -> dict[int, Entity]:
    """Catalog users for shifts: by user name (schedule files) or email (PagerDuty, Opsgenie)."""
    out: dict[int, Entity] = {}
    keys = {i: f"user:default/{s.name.lower()}" for i, s in enumerate(shifts) if "@" not in s.name and " " not in s.name}
    found = await deps.catalog.get_many(keys.values()) if keys else {}
    for i, shift in enumerate(shifts):
        if i in keys and keys[i] in found:
            out[i] = found[keys[i]]
            continue
        email = shift.email or (shift.name if "@" in shift.name else None)
        if email:
            key = await deps.catalog.user_by_email(email)
            if key:
                user = (await deps.catalog.get_many([key])).get(key)
                if user is not None:
                    out[i] = user
    return out


async def oncall_blocks(deps: Deps, resolution: Resolution, tz: str | None, *, upcoming: bool = False) -> list[Block]:
    """The on-call part of an answer (also shown on runbooks and entity cards)."""
    return (await oncall_answer(deps, resolution, tz, upcoming=upcoming))[0]


async def oncall_answer(deps: Deps, resolution: Resolution, tz: str | None, *,
                        upcoming: bool = False) -> tuple[list[Block], dict[str, Any]]:
    """The on-call part of an answer and its ``data``: every shift (with the name, email and
    catalog user the text shows), where the answer came from, and the contacts when none did."""
    blocks: list[Block] = []
    data: dict[str, Any] = {
        "entity": resolution.entity,
        "via": resolution.via,
        "via_entity": resolution.via_key,
        "checked": list(resolution.checked),
        "source": None,
        "target": None,
        "link": None,
        "cached_age_s": resolution.age_s,
        "shifts": [],
        "failures": list(resolution.failures),
        "fallback": list(resolution.fallback),
        "contacts": [],
    }
    answer = resolution.answer
    if answer is None:
        reason = "; ".join(resolution.failures) if resolution.failures else "no on-call source knows this entity, its system or its owners"
        blocks.append(Notice(level="warning", text=f"Nobody could be found on call: {reason}."))
        owners = await deps.catalog.get_many(resolution.fallback)
        for key in resolution.fallback:
            contact = contact_fields(owners[key]) if key in owners else []
            blocks.append(Fields(pairs=(("Contact instead", name_of(key)), *contact)))
            data["contacts"].append({"ref": key, "name": name_of(key), "in_catalog": key in owners,
                                     **fields_data(contact)})
        return blocks, data
    shifts = list(answer.shifts)
    people = await _people(deps, shifts)
    rows = []
    for i, shift in enumerate(shifts):
        person = people.get(i)
        label = person.display_name if person else shift.name
        email = shift.email or person_email(person)
        rows.append((shift, person, label, email))
    items = []
    for level, group in by_level(shifts).items():
        for shift in group[: 3 if upcoming else 2]:
            _, person, label, email = rows[shifts.index(shift)]
            role = _LEVELS.get(level, f"Level {level}")
            span = (f"from {when(shift.start, tz)} to {when(shift.end, tz)}" if upcoming
                    else f"until {when(shift.end, tz)}")
            detail = " · ".join(x for x in (role, span, shift.schedule, email) if x)
            items.append(Item(label=label, ref=person.ref.key if person else None, detail=detail,
                              person=Person(ref=person.ref.key, name=label, email=email) if person else None))
    title = "Next on call" if upcoming else "On call now"
    blocks.append(ItemList(title=title, items=tuple(items)))
    source = f"{answer.source}, {answer.target}"
    if resolution.age_s is not None:
        source += f"; as of {resolution.age_s:.0f} s ago"
    blocks.append(Notice(level="info", text=f"From {source}, via {resolution.via}."))
    if resolution.failures:
        blocks.append(Notice(level="warning", text="Not answered by: " + "; ".join(resolution.failures)))
    if answer.link:
        blocks.append(Links(links=((f"Open in {answer.source}", answer.link),)))
    data.update(source=answer.source, target=answer.target, link=answer.link, shifts=[
        {"name": shift.name, "display_name": label, "user": person.ref.key if person else None,
         "level": shift.level, "role": _LEVELS.get(shift.level, f"Level {shift.level}"),
         "email": email, "schedule": shift.schedule,
         "start": shift.start.isoformat() if shift.start else None,
         "end": shift.end.isoformat() if shift.end else None}
        for shift, person, label, email in rows
    ])
    return blocks, data


async def run(inv: Invocation, deps: Deps) -> Reply:
    args = list(inv.args)
    if not args:
        return Reply.notice(Status.USAGE, f"Usage: {SPEC.usage}")
    if deps.oncall is None:
        return Reply.notice(Status.ERROR, "On-call is not available in this process.")
    if args == ["mine"]:
        return await _mine(inv, deps)
    upcoming = len(args) > 1 and args[-1].lower() in ("next", "later", "upcoming")
    if upcoming:
        args = args[:-1]
    query = " ".join(args)
    entity = await find_entity(deps, query, command="oncall")
    resolution = await deps.oncall.resolve(deps.catalog, entity, upcoming=upcoming)
    blocks: list[Block] = [Header(
        text=f"{'Next on call' if upcoming else 'On call'} for {name_of(entity.ref.key)}",
        subtitle=describe_ref(entity.ref.key) + (f" — via {resolution.via}" if resolution.answer else ""),
    )]
    note = typo_note(entity, query)
    if note:
        blocks.append(Notice(level="info", text=note))
    oncall, data = await oncall_answer(deps, resolution, inv.tz, upcoming=upcoming)
    blocks.extend(oncall)
    data["upcoming"] = upcoming
    if note:
        data["note"] = note
    if resolution.answer is None:
        return Reply(status=Status.ERROR, blocks=tuple(blocks),
                     summary=f"No on-call answer for {name_of(entity.ref.key)}; contact "
                     + (", ".join(name_of(k) for k in resolution.fallback) or "its owner"), data=data,
                     subject=entity.ref.key)
    first = data["shifts"][0]["display_name"] if data["shifts"] else "nobody"  # as the text names them
    summary = f"{'Next' if upcoming else 'On call'} for {name_of(entity.ref.key)}: {first} (via {resolution.via})"
    return Reply(status=Status.OK, blocks=tuple(blocks), summary=summary, data=data, subject=entity.ref.key)


async def _mine(inv: Invocation, deps: Deps) -> Reply:
    if not inv.user_ref:
        return Reply.notice(Status.NOT_FOUND, "I don't know who you are in the catalog: in Slack your email must match a "
                            "catalog User; in the terminal set CALLBOARD_USER_EMAIL.")
    me = (await deps.catalog.get_many([inv.user_ref], relations=True)).get(inv.user_ref)
    if me is None:
        return Reply.notice(Status.NOT_FOUND, f"{inv.user_ref} is not in the catalog.")
    assert deps.oncall is not None
    groups = await deps.catalog.get_many(me.related("memberOf"), relations=True)
    email = me.spec.get("profile", {}).get("email") if isinstance(me.spec.get("profile"), dict) else None
    mine: list[tuple[str, Shift]] = []
    now = datetime.now(timezone.utc)
    for group in groups.values():
        for upcoming in (False, True):
            resolution = await deps.oncall.resolve(deps.catalog, group, upcoming=upcoming)
            for shift in resolution.answer.shifts if resolution.answer else ():
                if shift.name.lower() == me.ref.name.lower() or (email and (shift.email or shift.name).lower() == email.lower()):
                    if (shift.end is None or shift.end > now) and all(s != shift for _, s in mine):
                        mine.append((group.ref.name, shift))
    mine.sort(key=lambda gs: gs[1].start or now)
    items = tuple(
        Item(label=f"{when(s.start, inv.tz) if s.start and s.start > now else 'now'} → {when(s.end, inv.tz)}",
             detail=" · ".join(x for x in (group, _LEVELS.get(s.level, f"Level {s.level}"), s.schedule) if x))
        for group, s in mine[:20]
    )
    blocks: list[Block] = [Header(text=f"On-call shifts of {me.display_name}", subtitle=describe_ref(me.ref.key)),
                           ItemList(title="Now and in the next two weeks", items=items, empty="no shifts")]
    return Reply(status=Status.OK, blocks=tuple(blocks),
                 summary=f"{me.display_name}: {len(mine)} on-call shift(s) now or in the next two weeks",
                 data={"user": me.ref.key, "shifts": [{"group": g, "start": s.start.isoformat() if s.start else None,
                                                       "end": s.end.isoformat() if s.end else None, "level": s.level,
                                                       "role": _LEVELS.get(s.level, f"Level {s.level}"),
                                                       "schedule": s.schedule}
                                                      for g, s in mine]})


SPEC = CommandSpec(
    name="oncall",
    summary="Who is on call for an entity or team now (each escalation level, until when), or next; your shifts",
    usage="oncall <entity|group> [next] | oncall mine",
    examples=("oncall payment-service", "oncall payments-team next", "oncall mine",
              "who is on call for payment-service right now?", "who gets paged for checkout-api?"),
    run=run,
    aliases=("on-call", "pager"),
    grammar=Grammar(
        phrasings=(
            "(who|anyone|somebody|someone) (is|are|will be|would be) on call [for|of|at|in|on|with] {entity}",
            Phrasing(pattern="(who|anyone) (is|are) on call", args=()),
            "(who|anyone) (gets|will get|is getting|is|would be|should be|will be) (paged|pageable) "
            "[for|about|by|on] {entity}",
            "who (do|should|can|must) (I|we) (page|call|ping|escalate to|wake up) [for|about|on|regarding] {entity}",
            "(on call|pager|oncall) (for|of|on|at) {entity}",
            "(who|what) is {entity} 's on call",
            "{entity} 's on call",
            "{entity} on call",
            "is (anyone|anybody|someone|somebody) on call [for] {entity}",
            Phrasing(pattern="who is (next on call|on call next) [for|of|at] {entity}", args=("{entity}", "next")),
            Phrasing(pattern="who is on call [for|of|at] {entity} (next|later|after that)", args=("{entity}", "next")),
            Phrasing(pattern="(am I|when am I|when is my|when is my next) on call [shift|duty]", args=("mine",)),
            Phrasing(pattern="my (on call|pager) (shifts|shift|schedule|duty)", args=("mine",)),
        ),
        stop_words=("for", "right now", "now", "currently", "at the moment", "at this moment", "today", "tonight",
                    "at present", "presently", "this week", "this weekend"),
    ),
)
