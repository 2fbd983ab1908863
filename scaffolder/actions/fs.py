"""``fs:delete`` and ``fs:rename``: change files in the workspace, never outside it."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from ..paths import glob_matches, safe_child, walk_breadth_first
from .api import Action, ActionContext, ActionError, in_thread

__all__ = ["ACTIONS", "FS_DELETE", "FS_RENAME"]


def _matches(ctx: ActionContext, pattern: str) -> list[Path]:
    exact = safe_child(ctx.workspace, pattern, what=f"{ctx.step_id}: input files entry")
    if exact.exists() or exact.is_symlink():
        return [exact]
    found = [e for e in walk_breadth_first(ctx.workspace.resolve()) if glob_matches(pattern, e)]
    return [safe_child(ctx.workspace, e.rstrip("/"), what=f"{ctx.step_id}: input files entry") for e in found]


def _delete(ctx: ActionContext) -> None:
    files = ctx.input.get("files")
    if not isinstance(files, list):
        raise ActionError("files must be an Array")
    for pattern in files:
        if not isinstance(pattern, str) or not pattern:
            raise ActionError(f"{ctx.step_id}: each entry of input files must be a path or glob")
        for path in _matches(ctx, pattern):
            if not (path.exists() or path.is_symlink()):
                continue  # removed with a folder matched before it
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            ctx.log(f"File {path.relative_to(ctx.workspace.resolve())} deleted successfully")


def _rename(ctx: ActionContext) -> None:
    files = ctx.input.get("files")
    if not isinstance(files, list):
        raise ActionError("rename action requires an array of files")
    for entry in files:
        if not isinstance(entry, Mapping) or not entry.get("from") or not entry.get("to"):
            raise ActionError("each file must have a from and to property")
        src = safe_child(ctx.workspace, str(entry["from"]), what=f"{ctx.step_id}: input files[].from")
        dst = safe_child(ctx.workspace, str(entry["to"]), what=f"{ctx.step_id}: input files[].to")
        if not src.exists():
            raise ActionError(f"{ctx.step_id}: cannot rename {entry['from']!r}: it does not exist in the workspace")
        if dst.exists():
            if not entry.get("overwrite"):
                raise ActionError(f"{ctx.step_id}: cannot rename {entry['from']!r} to {entry['to']!r}: "
                                  "dest already exists (set overwrite: true to replace it)")
            if dst.is_dir() and not dst.is_symlink():
                shutil.rmtree(dst)
            else:
                dst.unlink()
        dst.parent.mkdir(parents=True, exist_ok=True)
        src.rename(dst)
        ctx.log(f"File {entry['from']} renamed to {entry['to']} successfully")


FS_DELETE = Action(
    id="fs:delete", run=in_thread(_delete), supports_dry_run=True,
    description="Deletes files and folders (paths or globs) from the workspace.",
    input_schema={"type": "object", "required": ["files"],
                  "properties": {"files": {"type": "array", "items": {"type": "string"}}}},
)

FS_RENAME = Action(
    id="fs:rename", run=in_thread(_rename), supports_dry_run=True,
    description="Renames files and folders in the workspace.",
    input_schema={"type": "object", "required": ["files"], "properties": {"files": {
        "type": "array", "items": {"type": "object", "required": ["from", "to"], "properties": {
            "from": {"type": "string"}, "to": {"type": "string"}, "overwrite": {"type": "boolean"}}}}}},
)

ACTIONS = [FS_DELETE, FS_RENAME]
