"""``fetch:template``, ``fetch:plain`` and ``fetch:plain:file``: a skeleton into the workspace,
rendered (file contents and file/folder names) or copied as is.

A skeleton ``url`` is a path relative to the template's folder, which it never leaves, or a folder
(a file, for ``fetch:plain:file``) in a GitHub repository —
``https://github.com/<owner>/<repo>/tree/<branch>/<path>``, or a host of ``scaffolder.github_hosts``
— read through the project's GitHub client (``remote.py``: size limits, no path escapes, links
not followed). A relative ``url`` of a template read from a repository is resolved against the
template's URL, as Backstage does. Any other remote URL is refused, saying so. Every path written
stays inside the workspace (``targetPath`` and rendered names alike); a local skeleton's symbolic
link is followed only when it stays inside the template's folder. The log lines are Backstage's,
word for word.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..expressions import Templater, js_json
from ..paths import PathRefused, glob_matches, safe_child, walk_breadth_first
from .api import Action, ActionContext, ActionError
from .remote import is_remote, read_github_skeleton, resolved_url

__all__ = ["ACTIONS", "FETCH_TEMPLATE", "FETCH_PLAIN", "FETCH_PLAIN_FILE", "skeleton_source"]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def skeleton_source(ctx: ActionContext, url: Any, *, key: str = "url") -> Path:
    """The local folder or file ``url`` names, relative to the template's own folder."""
    if not isinstance(url, str) or not url:
        raise ActionError(f"{ctx.step_id}: input {key} must be a relative path to the skeleton")
    if _URL.match(url) and not re.match(r"^[A-Za-z]:[\\/]", url):
        raise ActionError(f"{ctx.step_id}: input {key} {url!r} is a remote location Callboard does not read; "
                          "give a folder of the template, or a GitHub repository URL (https://github.com/<owner>/"
                          "<repo>/tree/<branch>/<folder>)")
    base = ctx.template.base_dir
    if base is None:
        where = f" ({ctx.template.base_url})" if ctx.template.base_url else ""
        raise ActionError(f"{ctx.step_id}: the template{where} was not read from a local folder, so its relative "
                          f"{key} {url!r} cannot be read (Callboard reads skeletons from a template's own folder)")
    source = safe_child(base, url, what=f"{ctx.step_id}: input {key}", inside="the template's folder")
    if not source.exists():
        raise ActionError(f"{ctx.step_id}: input {key} {url!r} does not exist in the template's folder")
    return source


def _target(ctx: ActionContext, default: str | None = "./") -> Path:
    target = ctx.input.get("targetPath", default)
    if target is None:
        raise ActionError(f"{ctx.step_id}: input targetPath is required")
    return safe_child(ctx.workspace, str(target), what=f"{ctx.step_id}: input targetPath")


def _is_binary(data: bytes) -> bool:
    head = data[:8000]
    if b"\x00" in head:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _git_mode(path: Path) -> int:
    """The mode a skeleton file is written with: git's two (0644, or 0755 when executable), whatever
    the permissions of the checkout it was read from (as Backstage's dry-run, which gets only the
    executable bit)."""
    return 0o100755 if path.stat().st_mode & stat.S_IXUSR else 0o100644


def _inside(root: Path, path: Path) -> bool:
    real = path.resolve()
    return real == root or real.is_relative_to(root)


def _sorted_json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _sorted_json(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_json(v) for v in value]
    return value


async def _source(ctx: ActionContext, want: Literal["folder", "file"], action: str,
                  key: str = "url") -> tuple[Path, Callable[[], None]]:
    """The skeleton ``url`` names, as a local path, and what removes it when the step is over (a
    repository's skeleton is read into a temporary folder; a local one is left alone)."""
    url = ctx.input.get(key)
    remote = url if is_remote(url) else None
    if remote is None and isinstance(url, str) and url and ctx.template.base_dir is None:
        remote = resolved_url(ctx, url)
    if remote is None:
        return await asyncio.to_thread(skeleton_source, ctx, url, key=key), lambda: None
    got = await read_github_skeleton(ctx, remote, want=want, action=action, key=key)
    return got.path, lambda: shutil.rmtree(got.folder, ignore_errors=True)


@dataclass(frozen=True, slots=True)
class _Options:
    output_dir: Path
    patterns: list[str] | None
    render_names: bool
    extension: str | bool


def _template_options(ctx: ActionContext) -> _Options:
    """fetch:template's inputs, checked in Backstage's order (before the skeleton is read)."""
    inp = ctx.input
    output_dir = _target(ctx)
    if inp.get("copyWithoutRender") and inp.get("copyWithoutTemplating"):
        raise ActionError("Fetch action input copyWithoutRender and copyWithoutTemplating can not be used at the same time")
    patterns: Any
    if inp.get("copyWithoutRender"):
        patterns, render_names = inp["copyWithoutRender"], False
    else:
        patterns, render_names = inp.get("copyWithoutTemplating"), True
    if patterns is not None and not isinstance(patterns, list):
        raise ActionError("Fetch action input copyWithoutRender/copyWithoutTemplating must be an Array")
    extension: str | bool = inp.get("templateFileExtension") or False
    if extension and (patterns or inp.get("cookiecutterCompat")):
        raise ActionError("Fetch action input extension incompatible with copyWithoutRender/copyWithoutTemplating "
                          "and cookiecutterCompat")
    if extension is True:
        extension = ".njk"
    if isinstance(extension, str) and extension and not extension.startswith("."):
        extension = "." + extension
    return _Options(output_dir=output_dir, patterns=patterns, render_names=render_names, extension=extension)


async def _with_source(ctx: ActionContext, want: Literal["folder", "file"], action: str,
                       work: Callable[[Path], None]) -> None:
    """``work`` on the skeleton's local path, in a thread; a fetched skeleton is removed after."""
    source, done = await _source(ctx, want, action)
    try:
        await asyncio.to_thread(work, source)
    finally:
        await asyncio.to_thread(done)


async def _fetch_template(ctx: ActionContext) -> None:
    ctx.log("Fetching template content from remote URL")
    options = await asyncio.to_thread(_template_options, ctx)
    await _with_source(ctx, "folder", "fetch:template", lambda source: _render_template(ctx, options, source))


def _render_template(ctx: ActionContext, options: _Options, source: Path) -> None:
    inp = ctx.input
    output_dir, patterns, render_names, extension = (options.output_dir, options.patterns, options.render_names,
                                                     options.extension)
    if not source.is_dir():
        raise ActionError(f"{ctx.step_id}: input url {inp.get('url')!r} is a file; fetch:template reads a folder")
    root = source.resolve()
    if output_dir == root or output_dir.is_relative_to(root):
        raise ActionError("targetPath must not be within template path")

    ctx.log("Listing files and directories in template")
    entries = walk_breadth_first(root)
    copy_only = {e for e in entries if any(glob_matches(str(p), e) for p in patterns or [])}
    values = inp.get("values")
    compat = bool(inp.get("cookiecutterCompat"))
    context = {"cookiecutter" if compat else "values": values}
    shown = js_json(_sorted_json(values)) if isinstance(values, Mapping) and values else None
    ctx.log(f"Processing {len(entries)} template files/directories with input values"
            + (f" {shown}" if shown else ""))
    integrations = ctx.deps.config.get("integrations") if isinstance(ctx.deps.config, Mapping) else None
    templater = Templater.shared(cookiecutter_compat=compat, trim_blocks=bool(inp.get("trimBlocks")),
                          lstrip_blocks=bool(inp.get("lstripBlocks")),
                          integrations=integrations if isinstance(integrations, Mapping) else None)
    replace_existing = bool(inp.get("replace"))

    for location in entries:
        local = location
        if extension:
            render_contents = os.path.splitext(local.rstrip("/"))[1] == extension and not local.endswith("/")
            if render_contents:
                local = local[: -len(str(extension))]
            local = templater.render(local, context)
        else:
            render_contents = location not in copy_only
            if render_names or render_contents:
                local = templater.render(local, context)
        # a name that renders to nothing skips the file (or the whole folder), as in Backstage
        if local == "" or local.startswith("/") or "//" in local:
            continue
        out = safe_child(output_dir, local, what=f"{ctx.step_id}: file name {location!r} (rendered {local!r})")
        if out.exists() and not replace_existing:
            continue
        if not render_contents and not extension:
            ctx.log(f"Copying file/directory {location} without processing.")
        if location.endswith("/"):
            ctx.log(f"Writing directory {location} to template output path.")
            out.mkdir(parents=True, exist_ok=True)
            continue
        src = root / location
        if src.is_symlink() and not _inside(root, src):
            raise PathRefused(f"{ctx.step_id}: skeleton file {location!r} is a symbolic link leading outside "
                              "the template's folder")
        data = src.read_bytes()
        mode = _git_mode(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink() or _is_binary(data):
            ctx.log(f"Copying file binary or symbolic link at {location}, to template output path.")
            out.write_bytes(data)
        else:
            ctx.log(f"Writing file {location} to template output path with mode {mode}.")
            text = data.decode("utf-8")
            if render_contents:
                text = templater.render(text, context)
            with open(out, "w", encoding="utf-8", newline="") as f:
                f.write(text)
        os.chmod(out, stat.S_IMODE(mode))
    ctx.log(f"Template result written to {output_dir}")


def _copy_tree(ctx: ActionContext, source: Path, target: Path) -> None:
    """Copy ``source`` into ``target`` (within the workspace), refusing links that lead out."""
    root = source.resolve()
    for rel in walk_breadth_first(root):
        src = root / rel
        out = safe_child(target, rel, what=f"{ctx.step_id}: file {rel!r}")
        if rel.endswith("/"):
            out.mkdir(parents=True, exist_ok=True)
            continue
        if src.is_symlink() and not _inside(root, src):
            raise PathRefused(f"{ctx.step_id}: skeleton file {rel!r} is a symbolic link leading outside the "
                              "template's folder")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out)
        os.chmod(out, stat.S_IMODE(_git_mode(src)))


async def _fetch_plain(ctx: ActionContext) -> None:
    ctx.log("Fetching plain content from remote URL")
    target = await asyncio.to_thread(_target, ctx)
    await _with_source(ctx, "folder", "fetch:plain", lambda source: _copy_plain(ctx, source, target))


def _copy_plain(ctx: ActionContext, source: Path, target: Path) -> None:
    if not source.is_dir():
        raise ActionError(f"{ctx.step_id}: input url {ctx.input.get('url')!r} is a file; use fetch:plain:file")
    target.mkdir(parents=True, exist_ok=True)
    _copy_tree(ctx, source, target)


async def _fetch_plain_file(ctx: ActionContext) -> None:
    ctx.log("Fetching plain content from remote URL")
    target = await asyncio.to_thread(_target, ctx, None)
    await _with_source(ctx, "file", "fetch:plain:file", lambda source: _copy_file(ctx, source, target))


def _copy_file(ctx: ActionContext, source: Path, target: Path) -> None:
    if source.is_dir():
        raise ActionError(f"{ctx.step_id}: input url {ctx.input.get('url')!r} is a folder; use fetch:plain")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir():
        raise ActionError(f"{ctx.step_id}: input targetPath {ctx.input.get('targetPath')!r} is a folder")
    shutil.copyfile(source, target)


_STR_ARRAY = {"type": "array", "items": {"type": "string"}}

FETCH_TEMPLATE = Action(
    id="fetch:template",
    run=_fetch_template,
    description="Renders a skeleton folder (contents and file names) into the workspace, or into targetPath.",
    supports_dry_run=True,
    input_schema={
        "type": "object",
        "required": ["url"],
        "properties": {
            "url": {"type": "string"},
            "targetPath": {"type": "string"},
            "values": {"type": "object"},
            "copyWithoutRender": _STR_ARRAY,
            "copyWithoutTemplating": _STR_ARRAY,
            "cookiecutterCompat": {"type": "boolean"},
            "templateFileExtension": {"type": ["string", "boolean"]},
            "replace": {"type": "boolean"},
            "trimBlocks": {"type": "boolean"},
            "lstripBlocks": {"type": "boolean"},
            "token": {"type": "string"},
        },
    },
)

FETCH_PLAIN = Action(
    id="fetch:plain",
    run=_fetch_plain,
    description="Copies a folder from the template into the workspace, or into targetPath, without rendering.",
    supports_dry_run=True,
    input_schema={"type": "object", "required": ["url"],
                  "properties": {"url": {"type": "string"}, "targetPath": {"type": "string"},
                                 "token": {"type": "string"}}},
)

FETCH_PLAIN_FILE = Action(
    id="fetch:plain:file",
    run=_fetch_plain_file,
    description="Copies one file from the template to targetPath in the workspace, without rendering.",
    supports_dry_run=True,
    input_schema={"type": "object", "required": ["url", "targetPath"],
                  "properties": {"url": {"type": "string"}, "targetPath": {"type": "string"},
                                 "token": {"type": "string"}}},
)

ACTIONS = [FETCH_TEMPLATE, FETCH_PLAIN, FETCH_PLAIN_FILE]
