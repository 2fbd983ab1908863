"""A Markdown extension the build adds after ``pymdownx.snippets``: a snippet is included only
when its file, symlinks resolved, lies inside the repository or the build's own copy of the docs.

pymdownx's ``restrict_base_path`` compares paths without resolving symlinks, so a link inside
the repository to ``/etc/passwd`` (or ``../.env``) would pass it. Only build workers import this
module (it imports Markdown).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from markdown import Markdown
from markdown.extensions import Extension

from .config_check import inside

__all__ = ["SnippetGuard", "makeExtension"]

log = logging.getLogger("mkdocs.callboard")


class SnippetGuard(Extension):
    def __init__(self, **kwargs: Any) -> None:
        self.config = {"roots": [[], "folders (resolved) snippets may be read from"]}
        super().__init__(**kwargs)

    def extendMarkdown(self, md: Markdown) -> None:  # noqa: N802 - Markdown's name
        if "snippet" not in md.preprocessors:
            return
        processor = md.preprocessors["snippet"]
        roots = [os.path.realpath(r) for r in self.getConfig("roots")]
        find = processor.get_snippet_path

        def get_snippet_path(path: str) -> str | None:
            found = find(path)
            if found is None:
                return None
            real = os.path.realpath(found)
            if any(inside(real, root) for root in roots) and os.path.isfile(real):
                return real
            log.warning('snippet "%s" is outside the repository (or not a file): not included', path)
            return None

        processor.get_snippet_path = get_snippet_path


def makeExtension(**kwargs: Any) -> SnippetGuard:  # noqa: N802 - Markdown's name
    return SnippetGuard(**kwargs)
