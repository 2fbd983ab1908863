"""What a scaffolder action is: an id, a run function over an ``ActionContext``, and whether it
can take part in a dry-run. Built-ins and plugins register the same way, through the
``callboard.actions`` entry point group (``name = "module:ACTION"`` or a module with ``ACTIONS``).
"""

from __future__ import annotations

import asyncio

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..model import Runner, TemplateDef

__all__ = ["Action", "ActionContext", "ActionDeps", "ActionError", "in_thread"]


class ActionError(Exception):
    """An action could not do its work; the message is for the person who ran the template (no
    secrets, no stack), and names the step's input that was wrong where it can."""


@dataclass(frozen=True, slots=True)
class ActionDeps:
    """What actions may reach beyond the workspace, given by whoever runs the task (the app).

    ``app`` is the running Callboard (catalog, config); typed loosely so the scaffolder does not
    import the bot layer. ``config`` is the ``scaffolder`` section of the settings (trusted)."""

    app: Any = None
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ActionContext:
    """One step's run of an action. Every path an action touches stays inside ``workspace``."""

    step_id: str
    workspace: Path
    input: Mapping[str, Any]  # the step's input, rendered
    secrets: Mapping[str, str]
    user: Runner
    template: TemplateDef
    dry_run: bool
    deps: ActionDeps
    log: Callable[[str], None]
    outputs: dict[str, Any] = field(default_factory=dict)  # what the step outputs (steps.<id>.output)

    def output(self, name: str, value: Any) -> None:
        self.outputs[name] = value


@dataclass(frozen=True, slots=True)
class Action:
    id: str  # "fetch:template"
    run: Callable[[ActionContext], Awaitable[None]]
    description: str = ""
    supports_dry_run: bool = False  # False: skipped in a dry-run, its outputs are ``example_outputs``
    example_outputs: Mapping[str, Any] = field(default_factory=dict)
    #: takes back what a step that succeeded did, when a later step of the same run fails (the
    #: runner calls it with that step's own context, outputs filled, newest step first; an undo
    #: that fails is logged and the others still run). None: nothing to take back (a published
    #: repository stays, as in Backstage; catalog:register's entity does not).
    undo: Callable[[ActionContext], Awaitable[None]] | None = None
    # JSON Schema of the rendered input, checked by the engine before the action runs (as Backstage
    # does: "Invalid input passed to action <id>, instance.<key> is not of a type(s) string")
    input_schema: Mapping[str, Any] | None = None


def in_thread(work: Callable[[ActionContext], None]) -> Callable[[ActionContext], Awaitable[None]]:
    """An action's ``run`` for blocking work (reading, rendering and writing files): done in a
    thread, so a template run never holds the event loop that answers chat while it works."""

    async def run(ctx: ActionContext) -> None:
        await asyncio.to_thread(work, ctx)

    run.__name__ = run.__qualname__ = getattr(work, "__name__", "run")
    return run
