"""A Markdown extension every build adds after the others: files that Markdown extensions read
because a page asks for them (a snippet, a diagram's ``source=``, an image to inline) are read
only when they lie, symlinks resolved, inside the repository or the build's own copy of the docs.

pymdownx's ``restrict_base_path`` compares paths without resolving symlinks, so a link inside
the repository to ``/etc/passwd`` (or ``../.env``) would pass it; ``plantuml_markdown`` and
``pymdownx.b64`` join a page's path to their base folder with no check at all. Only build workers
import this module (it imports Markdown).
"""

from __future__ import annotations

import builtins
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from markdown import Markdown
from markdown.extensions import Extension

from .config_check import inside

__all__ = ["ReadGuard", "makeExtension"]

log = logging.getLogger("mkdocs.callboard")

#: preprocessor name -> the module whose ``open`` reads what a page names
_READERS = {"plantuml": "plantuml_markdown.plantuml_markdown", "b64": "pymdownx.b64"}


def _allowed(path: str, roots: Sequence[str]) -> bool:
    real = os.path.realpath(path)
    return any(inside(real, root) for root in roots)


def _guarded_open(roots: Sequence[str]) -> Callable[..., Any]:
    def open_inside(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, (str, bytes, os.PathLike)) and not _allowed(os.fsdecode(file), roots):
            log.warning('"%s" is outside the repository: not read', os.fsdecode(file))
            raise FileNotFoundError(f"{os.fsdecode(file)} is outside the repository")
        return builtins.open(file, mode, *args, **kwargs)

    return open_inside


class ReadGuard(Extension):
    def __init__(self, **kwargs: Any) -> None:
        self.config = {"roots": [[], "folders (resolved) pages may read files from"]}
        super().__init__(**kwargs)

    def extendMarkdown(self, md: Markdown) -> None:  # noqa: N802 - Markdown's name
        roots = [os.path.realpath(r) for r in self.getConfig("roots")]
        if "snippet" in md.preprocessors:
            self._guard_snippets(md.preprocessors["snippet"], roots)
        for name, module_name in _READERS.items():
            module = sys.modules.get(module_name)
            if module is not None and (name in md.preprocessors or name in md.postprocessors):
                # the module's own `open`, for this build's roots (a worker runs one build at a time)
                module.open = _guarded_open(roots)  # type: ignore[attr-defined]

    @staticmethod
    def _guard_snippets(processor: Any, roots: list[str]) -> None:
        find = processor.get_snippet_path

        def get_snippet_path(path: str) -> str | None:
            found = find(path)
            if found is None:
                return None
            real = os.path.realpath(found)
            if _allowed(real, roots) and os.path.isfile(real):
                return real
            log.warning('snippet "%s" is outside the repository (or not a file): not included', path)
            return None

        processor.get_snippet_path = get_snippet_path


def makeExtension(**kwargs: Any) -> ReadGuard:  # noqa: N802 - Markdown's name
    return ReadGuard(**kwargs)
