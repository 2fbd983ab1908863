"""Commands a person reads and types: ``owner payment-service``, not ``owner component:default/payment-service``.

A reply's suggested commands name entities by their full refs, which always resolve. In the
terminal a ref is written in the shortest form that the catalog's search resolves to the same
entity, surely and by exact name: the name alone, else ``kind:name`` (default namespace), else
the full ref. Whichever form is shown, the command runs on the same entity.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from callboard.catalog.search import SearchResult
from callboard.commands.api import Actions, Reply, RunCommand

__all__ = ["short_commands", "short_ref"]

#: A full entity ref as commands write it: ``kind:namespace/name``.
_REF = re.compile(r"(?<!\S)(?P<kind>[a-z][a-z0-9-]*):(?P<ns>[a-z0-9][a-z0-9._-]*)/(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?!\S)")

Search = Callable[[str], SearchResult]


def short_ref(key: str, search: Search) -> str:
    """The shortest form of the ref ``key`` that ``search`` resolves to ``key`` itself, for sure."""
    m = _REF.fullmatch(key)
    if m is None:
        return key
    kind, ns, name = m["kind"], m["ns"], m["name"]
    forms = [name, f"{kind}:{name}"] if ns == "default" else [f"{ns}/{name}", f"{kind}:{ns}/{name}"]
    for form in forms:
        match = search(form).match
        if match is not None and match.key == key and match.name.lower() == name.lower():
            return form
    return key


def short_commands(reply: Reply, search: Search) -> Reply:
    """``reply`` with every suggested command's refs in their short forms (see ``short_ref``)."""
    changed = False
    blocks = []
    for block in reply.blocks:
        if isinstance(block, Actions):
            actions = []
            for action in block.actions:
                if isinstance(action, RunCommand):
                    command = _REF.sub(lambda m: short_ref(m[0], search), action.command)
                    if command != action.command:
                        action = dataclasses.replace(action, command=command)
                        changed = True
                actions.append(action)
            block = Actions(actions=tuple(actions))
        blocks.append(block)
    return dataclasses.replace(reply, blocks=tuple(blocks)) if changed else reply
