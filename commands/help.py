"""``help [command]``: what Callboard can do."""

from __future__ import annotations

from .api import Block, CommandSpec, Grammar, Deps, Fields, Header, Invocation, Item, ItemList, Phrasing, Reply, Status, Text
from .grammar import pattern_text

__all__ = ["SPEC", "run"]


#: Example questions in the list of commands, at most.
_QUESTIONS_SHOWN = 12


def phrasings(spec: CommandSpec) -> list[str]:
    """The questions ``spec`` understands, as people read them (``who owns <entity>``)."""
    if spec.grammar is None:
        return []
    return list(dict.fromkeys(pattern_text(p.pattern if isinstance(p, Phrasing) else p)
                              for p in spec.grammar.phrasings))


def questions(specs: tuple[CommandSpec, ...]) -> list[str]:
    """The examples that are questions in words (not a command typed): one or two per command."""
    names = {n for s in specs for n in (s.name, *s.aliases)}
    per_command = [[e for e in s.examples if e.split()[0].lower().lstrip("/") not in names] for s in specs]
    out = [q[0] for q in per_command if q] + [e for q in per_command for e in q[1:2]]
    return out[:_QUESTIONS_SHOWN]


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
        asked = phrasings(spec)
        blocks: list[Block] = [
            Header(text=spec.name, subtitle=spec.summary),
            Fields(pairs=(("Usage", spec.usage),)),
            ItemList(title="Examples", items=tuple(Item(label=e) for e in spec.examples)),
        ]
        if asked:
            blocks.append(ItemList(title="Or ask it in words", items=tuple(Item(label=q) for q in asked)))
        return Reply(
            status=Status.OK,
            blocks=tuple(blocks),
            summary=f"{spec.name}: {spec.summary}",
            data={"command": spec.name, "usage": spec.usage, "examples": list(spec.examples), "questions": asked},
        )
    items = tuple(Item(label=s.usage, detail=s.summary) for s in deps.commands)
    asked = questions(deps.commands)
    return Reply(
        status=Status.OK,
        blocks=(
            Header(text="Callboard commands"),
            ItemList(title="Commands", items=items),
            ItemList(title="Or just ask (typos are fine; a bare name shows its card)",
                     items=tuple(Item(label=q) for q in asked)),
            Text(text="`help <command>` lists the questions each command understands."),
        ),
        summary="Callboard commands: " + ", ".join(s.name for s in deps.commands),
        data={"commands": [{"name": s.name, "usage": s.usage, "summary": s.summary, "questions": phrasings(s)}
                           for s in deps.commands],
              "questions": asked},
    )


SPEC = CommandSpec(
    name="help",
    summary="List the commands, or explain one",
    usage="help [command]",
    examples=("help", "help owner", "what can you do?"),
    run=run,
    grammar=Grammar(
        phrasings=(
            "what (can|do) (you|I) (do|ask|answer)",
            "what (can|should) I ask [you]",
            "how (does|do) (this|you|callboard|it) work",
            "how (do|can) (I|we) use (this|you|callboard|it)",
            "what (commands|questions) (are there|do you know|can I use|can I ask|do you understand)",
            "help me",
        ),
        args=(),
    ),
)
