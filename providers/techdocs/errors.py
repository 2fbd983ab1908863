"""The TechDocs layer's one error shape.

Expected failures (a reference that cannot be resolved, a config that is refused, a folder
with nothing to build, a remote source that cannot be fetched) are ``DocsError`` values that
answers and the sync summary show; exceptions are for bugs and broken infrastructure.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DocsError"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DocsError:
    """Why some docs cannot be built or read, in words fit to show a person.

    ``file`` and ``line`` name the place in the docs' repository when the problem is in one
    of its files (a refused ``mkdocs.yml``).
    """

    message: str
    file: str | None = None  # relative to the repository
    line: int | None = None

    def __str__(self) -> str:
        if self.file is None:
            return self.message
        place = f"{self.file}, line {self.line}" if self.line else self.file
        return f"{place}: {self.message}"
