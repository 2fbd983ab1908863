"""``deps <entity>``: what it depends on, and what depends on it."""

from __future__ import annotations

from ._lookup import describe_ref, entity_from, kind_of, name_of, typo_note
from .api import CommandSpec, Deps, Header, Invocation, Item, ItemList, Notice, Reply, Status

__all__ = ["SPEC", "run"]

_LIMIT = 500


def _items(keys: list[str], known: set[str]) -> tuple[Item, ...]:
    return tuple(
        Item(label=name_of(k), ref=k, detail=kind_of(k) + ("" if k in known else " · not in the catalog"))
        for k in keys[:_LIMIT]
    )


async def run(inv: Invocation, deps: Deps) -> Reply:
    e, query = await entity_from(inv, deps, usage=SPEC.usage)
    depends_on = e.related("dependsOn")
    dependents = e.related("dependencyOf")
    consumes = e.related("consumesApi")
    known = set(await deps.catalog.get_many([*depends_on, *dependents, *consumes]))
    blocks: list = [Header(text=f"Dependencies of {describe_ref(e.ref.key)}")]
    note = typo_note(e, query)
    if note:
        blocks.append(Notice(level="info", text=note))
    blocks.append(ItemList(title="Depends on", items=_items(depends_on, known), total=len(depends_on)))
    if consumes:
        blocks.append(ItemList(title="Consumes APIs", items=_items(consumes, known), total=len(consumes)))
    blocks.append(ItemList(title="Depended on by", items=_items(dependents, known), total=len(dependents)))
    return Reply(
        status=Status.OK,
        blocks=tuple(blocks),
        summary=f"{name_of(e.ref.key)} depends on {len(depends_on)}, {len(dependents)} depend on it",
        subject=e.ref.key,
        data={"entity": e.ref.key, "depends_on": depends_on, "dependency_of": dependents, "consumes_apis": consumes},
    )


from .api import Grammar  # noqa: E402  (beside SPEC: the grammar is part of it)

SPEC = CommandSpec(
    name="deps",
    summary="What an entity depends on, and what depends on it",
    usage="deps <entity>",
    examples=("deps payment-service", "what depends on payments-db?", "what does payment-service depend on?"),
    run=run,
    aliases=("dependencies",),
    grammar=Grammar(
        phrasings=(
            "(what|who|which services|which components|what services|what components|anything|anyone) "
            "(depends|depend|relies|rely|is built|are built) on {entity}",
            "(what|who|which services|which components) (uses|use|calls|call|consumes|consume|needs|need) {entity}",
            "what (does|do|did) {entity} (depend|rely|build) on",
            "what (does|do) {entity} (use|need|call|consume|require)",
            "(dependencies|dependency|deps|dependents|dependants) (of|for|on) {entity}",
            "(what|which) (are|is) {entity} 's (dependencies|deps|dependents|dependants)",
            "{entity} 's (dependencies|deps|dependents|dependants)",
            "{entity} (dependencies|deps|dependents|dependants)",
            "what (breaks|would break|will break|could break|is affected|would be affected|goes down) (if|when) "
            "{entity} (goes down|is down|fails|breaks|dies|is broken|is slow)",
            "(does|is) (anything|anyone) (depend|depends|rely|relies|depending|relying) on {entity}",
        ),
    ),
)
