"""Paths a template names (skeleton URLs, ``targetPath``, rendered file names, ``fs:*`` inputs),
kept inside their root: the workspace, or the template's own folder.

A path is refused when it is absolute, climbs out with ``..``, or reaches a symbolic link that
leads out; the error names the input and the path. Globs (``copyWithoutTemplating``,
``fs:delete``) are matched as Backstage's globby matches them with ``dot: true``: ``*`` and ``?``
stay within one folder, ``**`` spans folders, ``{a,b}`` expands.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from ..catalog.globs import expand_braces
from .actions.api import ActionError

__all__ = ["PathRefused", "safe_child", "glob_matches", "walk_breadth_first", "walk_workspace"]


class PathRefused(ActionError):
    """A path from a template that would leave its root."""


def safe_child(root: Path, relative: str, *, what: str, inside: str = "the workspace") -> Path:
    """``relative`` resolved under ``root`` (symlinks followed), or ``PathRefused`` naming ``what``."""
    if not isinstance(relative, str):
        raise PathRefused(f"{what} must be a path (text), got {type(relative).__name__}")
    if "\x00" in relative:
        raise PathRefused(f"{what} {relative!r} contains a NUL character")
    if os.path.isabs(relative) or relative.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", relative):
        raise PathRefused(f"{what} {relative!r} is an absolute path; it must be relative to {inside}")
    base = root.resolve()
    joined = Path(os.path.normpath(base / relative))
    if joined != base and not joined.is_relative_to(base):
        raise PathRefused(f"{what} {relative!r} is outside {inside} (it climbs out with '..')")
    real = joined.resolve()
    if real != base and not real.is_relative_to(base):
        raise PathRefused(f"{what} {relative!r} is outside {inside} (a symbolic link leads out)")
    return real


@lru_cache(maxsize=512)
def _segment_regex(segment: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(segment):
        c = segment[i]
        if c == "\\" and i + 1 < len(segment):
            out.append(re.escape(segment[i + 1]))
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = segment.find("]", i + 2)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = segment[i + 1:end]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def _match(pattern: list[str], parts: list[str]) -> bool:
    if not pattern:
        return not parts
    head = pattern[0]
    if head == "**":
        return any(_match(pattern[1:], parts[i:]) for i in range(len(parts) + 1))
    if not parts:
        return False
    return bool(_segment_regex(head).match(parts[0])) and _match(pattern[1:], parts[1:])


def glob_matches(pattern: str, relative: str) -> bool:
    """Whether the workspace/skeleton path ``relative`` (``/``-separated, a folder may end in ``/``)
    matches ``pattern``."""
    parts = [p for p in relative.rstrip("/").split("/") if p]
    for expanded in expand_braces(pattern):
        segs = [s for s in expanded.lstrip("./").split("/") if s] if expanded.startswith("./") else \
            [s for s in expanded.split("/") if s]
        if _match(segs, parts):
            return True
    return False


def walk_breadth_first(root: Path) -> list[str]:
    """Every entry under ``root`` as globby lists ``**/*`` (folders end with ``/``): level by level,
    each folder's entries in name order. Symbolic links are listed as files, never entered."""
    entries: list[str] = []
    level = [""]
    while level:
        next_level: list[str] = []
        for prefix in level:
            with os.scandir(root / prefix if prefix else root) as it:
                children = sorted(it, key=lambda e: e.name)
            for entry in children:
                rel = f"{prefix}{entry.name}"
                if entry.is_dir(follow_symlinks=False):
                    entries.append(rel + "/")
                    next_level.append(rel + "/")
                else:
                    entries.append(rel)
        level = next_level
    return entries


def walk_workspace(root: Path) -> Iterator[str]:
    """Every file under ``root``, depth first in name order (as node's sorted ``readdir`` recursion)."""
    with os.scandir(root) as it:
        children = sorted(it, key=lambda e: e.name)
    for entry in children:
        if entry.is_dir(follow_symlinks=False):
            for sub in walk_workspace(Path(entry.path)):
                yield f"{entry.name}/{sub}"
        else:
            yield entry.name
