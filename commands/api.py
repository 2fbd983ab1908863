"""Shared types of every command: what a command is, what it gets, what it returns.

A command is data plus one function: ``SPEC = CommandSpec(...)`` and
``async def run(inv: Invocation, deps: Deps) -> Reply``. A ``Reply`` is a small
frozen tree of neutral blocks; each surface (terminal, Slack, Teams) renders it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Union

if TYPE_CHECKING:
    from callboard.catalog.service import Catalog
    from callboard.providers.oncall.service import OnCall
    from callboard.providers.techdocs.service import TechDocs

__all__ = [
    "Action",
    "Actions",
    "Block",
    "Code",
    "CommandSpec",
    "Deps",
    "Fields",
    "Header",
    "Hit",
    "Hits",
    "Invocation",
    "Item",
    "ItemList",
    "Links",
    "Notice",
    "Reply",
    "Status",
    "Steps",
    "Text",
]


class Status(enum.Enum):
    OK = "ok"
    NOT_FOUND = "not_found"
    AMBIGUOUS = "ambiguous"
    USAGE = "usage"
    ERROR = "error"

    @property
    def answered(self) -> bool:
        return self is Status.OK


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    text: str
    subtitle: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Text:
    """A paragraph. `backticks` mark inline code; ``strong`` makes it a sub-heading."""

    text: str
    strong: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Steps:
    """A list; an item may go on with a fenced code block (```) on its following lines."""

    items: tuple[str, ...]
    ordered: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Code:
    text: str
    language: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Hit:
    """One search result: where it is, a snippet whose matched words are marked, a link."""

    title: str
    where: str
    runs: tuple[tuple[str, bool], ...]  # (text, matched)
    url: str | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Hits:
    title: str
    hits: tuple[Hit, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Fields:
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """One line of a list: a label, an optional entity ref it stands for, a detail."""

    label: str
    ref: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemList:
    title: str
    items: tuple[Item, ...]
    total: int | None = None  # when items were cut, how many there are in all
    empty: str = "none"


@dataclass(frozen=True, slots=True, kw_only=True)
class Links:
    links: tuple[tuple[str, str], ...]  # (title, url)


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice:
    level: str  # info | warning | error
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    label: str
    command: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Actions:
    actions: tuple[Action, ...]


Block = Union[Header, Text, Steps, Code, Hits, Fields, ItemList, Links, Notice, Actions]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    status: Status
    blocks: tuple[Block, ...]
    summary: str  # one line: the plain-text fallback and notification text
    data: dict[str, Any] = field(default_factory=dict)  # machine-readable answer (--format json)

    @classmethod
    def notice(cls, status: Status, text: str, *blocks: Block, data: dict[str, Any] | None = None) -> Reply:
        level = "error" if status in (Status.ERROR, Status.USAGE) else "warning" if status is not Status.OK else "info"
        return cls(status=status, blocks=(Notice(level=level, text=text), *blocks), summary=text, data=data or {})


@dataclass(frozen=True, slots=True, kw_only=True)
class Invocation:
    """One request to run a command, whatever surface it came from."""

    command: str
    args: tuple[str, ...]
    text: str
    platform: str = "shell"
    user: str | None = None  # the platform's user id
    user_ref: str | None = None  # the asker's catalog User, when the surface could tell
    channel: str | None = None
    page: int = 1
    tz: str | None = None  # the asker's IANA time zone, when the surface knows it


@dataclass(frozen=True, slots=True, kw_only=True)
class Deps:
    """What commands may use. Injected by the app; commands never build their own."""

    catalog: Catalog
    commands: tuple[CommandSpec, ...] = ()
    docs: TechDocs | None = None
    oncall: OnCall | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandSpec:
    name: str
    summary: str
    usage: str
    examples: tuple[str, ...]
    run: Callable[[Invocation, Deps], Awaitable[Reply]]
    aliases: tuple[str, ...] = ()
    acl: str | None = None
