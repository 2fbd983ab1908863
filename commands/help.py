"""``help [command]``: what Callboard can do."""

from __future__ import annotations

from .api import CommandSpec, Deps, Fields, Header, Invocation, Item, ItemList, Reply, Status, Text

__all__ = ["SPEC", "run"]


async def run(inv: Invocation, deps: Deps) -> Reply:
    specs = {s.name: s for s in deps.commands}
    for s in deps.commands:
        for alias in s.aliases:
            specs.setdefault(alias, s)
    if inv.args:
        name = inv.args[0].lower().lstrip("/")
        spec = specs.get(name)
        if spec is None:
            return Reply.notice(Status.NOT_FOUND, f'No command "{name}". Commands: ' + ", ".join(s.name for s in deps.commands))
        return Reply(
            status=Status.OK,
            blocks=(
                Header(text=spec.name, subtitle=spec.summary),
                Fields(pairs=(("Usage", spec.usage),)),
                ItemList(title="Examples", items=tuple(Item(label=e) for e in spec.examples)),
            ),
            summary=f"{spec.name}: {spec.summary}",
            data={"command": spec.name, "usage": spec.usage, "examples": list(spec.examples)},
        )
    items = tuple(Item(label=s.usage, detail=s.summary) for s in deps.commands)
    return Reply(
        status=Status.OK,
        blocks=(
            Header(text="Callboard commands"),
            ItemList(title="Commands", items=items),
            Text(text='You can also just ask: "who owns payment-service?", "what does payments-team own?", '
                      '"what depends on payments-db?". Typos are fine.'),
        ),
        summary="Callboard commands: " + ", ".join(s.name for s in deps.commands),
        data={"commands": [{"name": s.name, "usage": s.usage, "summary": s.summary} for s in deps.commands]},
    )


SPEC = CommandSpec(
    name="help",
    summary="List the commands, or explain one",
    usage="help [command]",
    examples=("help", "help owner"),
    run=run,
)
