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
    from callboard.scaffolder.permissions import Permissions
    from callboard.scaffolder.tasks import TaskRunner

__all__ = [
    "ACTION_TYPES",
    "BLOCK_TYPES",
    "Action",
    "Actions",
    "Block",
    "Code",
    "CommandSpec",
    "Deps",
    "Fields",
    "Grammar",
    "Header",
    "Hit",
    "Hits",
    "Invocation",
    "Item",
    "ItemList",
    "Links",
    "Notice",
    "OpenForm",
    "OpenUrl",
    "Person",
    "Phrasing",
    "Reply",
    "RunCommand",
    "ShowPage",
    "Status",
    "Steps",
    "Text",
    "Unanswered",
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
class Person:
    """A catalog User named in a reply: a surface may show it as a mention of that person."""

    ref: str  # user:<namespace>/<name>
    name: str  # what to show when the surface cannot mention them
    email: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """One line of a list: a label, an optional entity ref it stands for, a detail."""

    label: str
    ref: str | None = None
    detail: str | None = None
    person: Person | None = None  # the item is a person a surface may mention


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemList:
    title: str
    items: tuple[Item, ...]
    total: int | None = None  # when items were cut, how many there are in all
    empty: str = "none"
    offset: int = 0  # how many items come before these (a later page)
    page: tuple[int, int] | None = None  # (this page, pages) when the list is paged


@dataclass(frozen=True, slots=True, kw_only=True)
class Links:
    links: tuple[tuple[str, str], ...]  # (title, url)


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice:
    level: str  # info | warning | error
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCommand:
    """Run a command line (as if the person had typed it) and show its answer."""

    label: str
    command: str
    primary: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenUrl:
    """Open a web page (a surface shows it only when it is a plain http(s) URL)."""

    label: str
    url: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenForm:
    """Open the form ``form`` (a template ref), with ``values`` filled in."""

    label: str
    form: str
    values: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ShowPage:
    """Show another page of this answer (the conversation keeps what was asked, server-side)."""

    label: str
    page: int


Action = Union[RunCommand, OpenUrl, OpenForm, ShowPage]
#: Every kind of action, for the surfaces' coverage test.
ACTION_TYPES: tuple[type, ...] = (RunCommand, OpenUrl, OpenForm, ShowPage)


@dataclass(frozen=True, slots=True, kw_only=True)
class Actions:
    actions: tuple[Action, ...]


Block = Union[Header, Text, Steps, Code, Hits, Fields, ItemList, Links, Notice, Actions]
#: Every kind of block, for the surfaces' coverage test.
BLOCK_TYPES: tuple[type, ...] = (Header, Text, Steps, Code, Hits, Fields, ItemList, Links, Notice, Actions)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """An answer: what was asked (``command``), about what (``subject``, an entity ref), and how it went."""

    status: Status
    blocks: tuple[Block, ...]
    summary: str  # one line: the plain-text fallback and notification text
    data: dict[str, Any] = field(default_factory=dict)  # machine-readable answer (--format json)
    command: str | None = None  # the command that ran (set by the dispatcher when the command did not)
    subject: str | None = None  # the entity the answer is about (its ref key)

    @classmethod
    def notice(cls, status: Status, text: str, *blocks: Block, data: dict[str, Any] | None = None,
               subject: str | None = None) -> Reply:
        level = "error" if status in (Status.ERROR, Status.USAGE) else "warning" if status is not Status.OK else "info"
        return cls(status=status, blocks=(Notice(level=level, text=text), *blocks), summary=text, data=data or {},
                   subject=subject)

    def people(self) -> tuple[Person, ...]:
        """The catalog people this reply names, in order, each once."""
        seen: dict[str, Person] = {}
        for block in self.blocks:
            if isinstance(block, ItemList):
                for item in block.items:
                    if item.person is not None:
                        seen.setdefault(item.person.ref, item.person)
        return tuple(seen.values())


class Unanswered(Exception):
    """What was asked cannot be answered as asked (no such entity, several match, a usage error):
    ``reply`` says why. Lookups raise it; the dispatcher, the one boundary, shows ``reply``. So a
    command's result is always a ``Reply`` and a lookup's always what it looked up."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.summary)
        self.reply = reply


@dataclass(frozen=True, slots=True, kw_only=True)
class Invocation:
    """One request to run a command, whatever surface it came from, and who asks."""

    command: str
    args: tuple[str, ...]
    text: str
    platform: str = "shell"
    user: str | None = None  # the platform's user id
    user_ref: str | None = None  # the asker's catalog User, when the surface could tell
    channel: str | None = None
    tz: str | None = None  # the asker's IANA time zone, when the surface knows it
    #: False when the platform could not say who is asking (its API failed): then "you are not in
    #: the catalog" would be a guess, not an answer
    identified: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Deps:
    """What commands may use. Injected by the app; commands never build their own."""

    catalog: Catalog
    commands: tuple[CommandSpec, ...] = ()
    docs: TechDocs | None = None
    oncall: OnCall | None = None
    #: Software Templates: who may run which (``create`` lists only those), and the runs as tasks
    permissions: Permissions | None = None
    tasks: TaskRunner | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Phrasing:
    """One way people ask for a command, word by word: ``who owns {entity}``.

    ``(a|b c)`` is one of several words or runs of words, ``[a|b]`` the same but optional,
    ``{name}`` a slot (one word or more), ``{name?}`` a slot that may be empty. Words are matched
    without case; ``who's``/``whos`` read as ``who is``, ``what's`` as ``what is``, ``oncall`` and
    ``on-call`` as ``on call``, and a possessive ``'s`` is a word of its own (``{entity} 's owner``).
    Two slots side by side must begin with the entity slot: the catalog says where its name ends.
    """

    pattern: str
    #: the command's arguments: ``{slot}`` or a literal word; empty slots are left out. None: the grammar's
    args: tuple[str, ...] | None = None
    #: the kinds the entity slot means here, tried first (``what is part of {entity}``: a system). None: the grammar's
    kinds: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Grammar:
    """How a command is asked in words: its phrasings, the slot that names an entity, and the words
    that carry no meaning for it (dropped between a phrasing's words and around a slot's value).

    The dispatcher tries a typed command first (``owner x``, ``/owner x``, an alias), then every
    command's phrasings (the one matching the most words wins; then the one whose entity the catalog
    knows), then a bare entity name. Plugins declare theirs the same way, in their ``CommandSpec``.
    """

    phrasings: tuple[Phrasing | str, ...]
    args: tuple[str, ...] = ("{entity}",)
    #: the slot resolved against the catalog (articles dropped, a trailing ``team``/``service``/...
    #: tried with and without); None when no slot names an entity (``find {query}``)
    entity: str | None = "entity"
    #: the kinds the entity slot prefers, tried first (``team``: groups)
    kinds: tuple[str, ...] = ()
    #: words or runs of words that mean nothing here (``for``, ``right now``), beside the common ones
    #: (``the``, ``please``, ...)
    stop_words: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandSpec:
    name: str
    summary: str
    usage: str
    examples: tuple[str, ...]
    run: Callable[[Invocation, Deps], Awaitable[Reply]]
    aliases: tuple[str, ...] = ()
    #: the questions in words this command answers (``who owns {entity}``), beside its typed form
    grammar: Grammar | None = None
