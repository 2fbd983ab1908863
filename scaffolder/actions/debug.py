"""``debug:log``: writes a message into the task log, or lists the workspace's files."""

from __future__ import annotations

from ..expressions import js_json
from ..paths import walk_workspace
from .api import Action, ActionContext, in_thread

__all__ = ["ACTIONS", "DEBUG_LOG"]


def _log(ctx: ActionContext) -> None:
    ctx.log(js_json(dict(ctx.input), 2) or "{}")
    message = ctx.input.get("message")
    if message:
        ctx.log(str(message))
    if ctx.input.get("listWorkspace"):
        files = "\n".join(f"  - {f}" for f in walk_workspace(ctx.workspace))
        ctx.log(f"Workspace:\n{files}")


DEBUG_LOG = Action(
    id="debug:log", run=in_thread(_log), supports_dry_run=True,
    description="Writes a message into the log or lists all files in the workspace.",
    input_schema={"type": "object", "properties": {"message": {"type": "string"},
                                                   "listWorkspace": {"type": ["boolean", "string"]}}},
)

ACTIONS = [DEBUG_LOG]
