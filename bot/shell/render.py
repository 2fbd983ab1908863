"""The terminal renderer: a ``Reply`` as plain text, or as rich output for ``callboard chat``.

A reply carries text from catalogs, repositories and the asker, and a terminal acts on
what it prints: escape sequences clear the screen, retitle the window, write the
clipboard (OSC 52) or hide a link (OSC 8); a carriage return or a right-to-left
override makes a line show something else than it holds. So every string is passed
through ``clean`` before it is printed (newlines and tabs stay), rich output is built
from ``rich.text.Text`` objects only (``[red]`` or ``[link=…]`` in the data is shown,
never interpreted), hyperlinks are made only for plain http(s) URLs, and JSON keeps
the data whole but writes the characters JSON would leave raw as ``\\uXXXX``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console, Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text as RichText

from callboard.commands.api import (
    Action,
    Actions,
    Code,
    Fields,
    Header,
    Hits,
    ItemList,
    Links,
    Notice,
    OpenForm,
    OpenUrl,
    Reply,
    RunCommand,
    ShowPage,
    Steps,
    Text,
)
from callboard.commands.forms import Field, FieldType, Form

__all__ = ["action_text", "clean", "print_rich", "render_form_text", "render_json", "render_rich", "render_text"]

_MARK = {"info": "i", "warning": "!", "error": "x"}
_TEXT_LIST = 25
#: Whole escape sequences, 7- and 8-bit: CSI (``ESC [`` / ``0x9b``) up to its final byte; OSC, DCS,
#: SOS, PM and APC up to their terminator (BEL or ST); any other ``ESC`` with what it introduces.
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[ -/]*[0-~]?"
)
#: What is left that a terminal acts on: C0 but newline and tab, DEL, C1, and the bidi controls
#: and separators that reorder or break what a line shows.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: Characters ``json.dumps(ensure_ascii=False)`` leaves raw (it escapes only C0).
_JSON_RAW = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """``text`` without escape sequences and control characters, newlines and tabs kept."""
    return _CONTROL.sub("", _SEQUENCE.sub("", text))


def _linkable(url: str | None) -> bool:
    """True for a plain http(s) URL with a host and nothing a terminal or a hyperlink could act on."""
    if not url or any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def render_text(reply: Reply) -> str:
    """Plain text, no colour: what ``callboard ask`` prints and what tests read. Every string of
    the reply is ``clean``ed where it is placed."""
    c = clean
    out: list[str] = []
    for block in reply.blocks:
        if isinstance(block, Header):
            out.append(_capped(c(block.text)) + (f"  ({c(block.subtitle)})" if block.subtitle else ""))
        elif isinstance(block, Text):
            out.append(f"## {c(block.text)}" if block.strong else c(block.text))
        elif isinstance(block, Steps):
            for i, item in enumerate(block.items, 1):
                marker = f"{i}." if block.ordered else "-"
                first, *rest = c(item).split("\n")
                out.append(f"  {marker} {first}")
                out.extend(f"     {line}" for line in rest)
        elif isinstance(block, Code):
            out.append("```" + c(block.language or ""))
            out.extend(c(block.text).split("\n"))
            out.append("```")
        elif isinstance(block, Hits):
            for i, hit in enumerate(block.hits, 1):
                out.append(f"{i}. {c(hit.title)}  ({c(hit.where)})")
                # matched words are marked in prose only: the index never marks code, so a
                # command in a snippet (a code line, a `span`) copies as written
                snippet = "".join(f"**{c(t)}**" if marked else c(t) for t, marked in hit.runs)
                out.extend(f"   {line}" for line in snippet.split("\n"))
                if hit.url:
                    out.append(f"   {c(hit.url)}")
        elif isinstance(block, Notice):
            out.append(f"[{_MARK.get(block.level, '-')}] {_capped(c(block.text))}")
        elif isinstance(block, Fields):
            pairs = [(c(k), c(v)) for k, v in block.pairs]
            width = max((len(k) for k, _ in pairs), default=0)
            out.extend(f"  {k.ljust(width)}  {v}" for k, v in pairs)
        elif isinstance(block, ItemList):
            count = block.total if block.total is not None else len(block.items)
            out.append(f"{_capped(c(block.title))} ({count}){_page(block)}:" if block.items
                       else f"{_capped(c(block.title))}: {c(block.empty)}")
            for entry in block.items[:_TEXT_LIST]:
                out.append(f"  - {c(entry.label)}" + (f"  ({c(entry.detail)})" if entry.detail else ""))
            more = _more(block, count)
            if more:
                out.append(f"  ... and {more} more" + ("" if block.page else " (--format json lists them all)"))
        elif isinstance(block, Links):
            out.append("Links:")
            out.extend(f"  - {c(title)}: {c(url)}" for title, url in block.links)
        elif isinstance(block, Actions):
            shown = [s for s in map(action_text, block.actions) if s]
            if shown:  # one per line, nothing around a command: it copies as it is
                out.append("Next:")
                out.extend(f"  {s}" for s in shown)
    return "\n".join(out)


#: Quoted text longer than this (the asker's own question, echoed back) is shortened in the middle.
QUOTE_LIMIT = 80
_QUOTED = re.compile(r'"([^"\n]{%d,})"' % (QUOTE_LIMIT + 1))


def _capped(text: str) -> str:
    """``text`` with every quoted stretch over ``QUOTE_LIMIT`` characters cut in the middle: a
    pasted paragraph is not printed back whole in a one-line answer."""
    def cut(m: re.Match[str]) -> str:
        quoted = m[1]
        return f'"{quoted[:QUOTE_LIMIT - 20].rstrip()} … {quoted[-12:].lstrip()}" ({len(quoted):,} characters)'

    return _QUOTED.sub(cut, text)


def _one_line(text: str) -> str:
    """A command or URL as one line: cleaned, a line break a space."""
    return re.sub(r"[ \t]*[\r\n]+[ \t]*", " ", clean(text)).strip()


def _page(block: ItemList) -> str:
    return f" — page {block.page[0]} of {block.page[1]}" if block.page and block.page[1] > 1 else ""


def _more(block: ItemList, count: int) -> int:
    """How many items come after those shown (a page's own and the terminal's cut)."""
    return max(0, count - block.offset - min(len(block.items), _TEXT_LIST))


def action_text(action: Action) -> str:
    """An action as the terminal offers it: a command to type, a URL to open (cleaned)."""
    if isinstance(action, RunCommand):
        return _one_line(action.command)
    if isinstance(action, OpenUrl):
        return f"{_one_line(action.label)}: {_one_line(action.url)}"
    if isinstance(action, OpenForm):  # the terminal's forms are asked by the create command of the shell
        form = action.form.split(":", 1)[-1]
        form = form.split("/", 1)[1] if form.startswith("default/") else form
        return f"callboard create {_one_line(form)}   (in your shell: its questions one by one)"
    if isinstance(action, ShowPage):
        return ""  # the terminal shows whole lists; nothing to page
    raise TypeError(f"no terminal rendering for action {type(action).__name__}")


_FIELD_HINTS = {
    FieldType.TEXT: "text",
    FieldType.MULTILINE: "text, several lines",
    FieldType.PASSWORD: "secret, not echoed",
    FieldType.NUMBER: "a number",
    FieldType.INTEGER: "a whole number",
    FieldType.BOOLEAN: "yes/no",
    FieldType.CHOICE: "one of the choices",
    FieldType.MULTI_CHOICE: "any of the choices, separated by commas",
    FieldType.STRINGS: "a list, separated by commas",
    FieldType.ENTITY: "an entity from the catalog",
    FieldType.REPO_URL: "host?owner=…&repo=…",
}


def field_text(field: Field, value: object = None) -> str:
    """One field as a terminal prompt line: label, what to type, default, choices, help."""
    c = clean
    hint = _FIELD_HINTS[field.type]
    if field.type is FieldType.ENTITY and field.kinds:
        hint = f"an entity ({', '.join(field.kinds)})"
    line = f"{c(field.label)}{' *' if field.required else ''} ({hint})"
    current = value if value is not None else field.default
    if current is not None and field.type is not FieldType.PASSWORD:
        line += f" [{c(', '.join(map(str, current)) if isinstance(current, list) else str(current))}]"
    lines = [line]
    if field.choices:
        lines.extend(f"    - {c(ch.value)}" + (f": {c(ch.label)}" if ch.label != ch.value else "") for ch in field.choices)
    if field.help:
        lines.append(f"    {c(field.help)}")
    return "\n".join(lines)


def render_form_text(form: Form) -> str:
    """A form's current page as text: title, step, each field with its errors under it."""
    c = clean
    page = form.current
    out = [c(form.title) + (f"  (step {form.page + 1} of {len(form.pages)}: {c(page.title)})" if len(form.pages) > 1 else "")]
    if page.description:
        out.append(c(page.description))
    errors: dict[str, list[str]] = {}
    for error in form.errors:
        errors.setdefault(error.field, []).append(error.message)
    out.extend(f"[x] {c(m)}" for m in errors.get("", []))
    out.extend(f"  {c(label)}: {c(value)}" for label, value in page.review)
    for field in page.fields:
        out.append("  " + field_text(field, form.values.get(field.name)).replace("\n", "\n  "))
        out.extend(f"  [x] {c(m)}" for m in errors.get(field.name, []))
    return "\n".join(out)


def render_json(reply: Reply) -> str:
    """The answer and its data as JSON: the data whole (a script may want it exactly), but every
    character a terminal could act on written as a ``\\uXXXX`` escape. Outside strings JSON is
    ASCII, so the escapes land only inside strings and the document stays valid."""
    payload: dict[str, Any] = {"status": reply.status.value, "summary": reply.summary, **reply.data}
    payload["text"] = render_text(reply)
    text = json.dumps(payload, indent=2, ensure_ascii=False, default=str)
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _verbatim(text: str, style: str | Style = "") -> RichText:
    """Text to copy (a command, code, a URL): never wrapped or cut by rich, so a long line reaches
    the terminal whole and the terminal's own soft wrap copies back as the one line it is."""
    return RichText(text, style=style, no_wrap=True, overflow="ignore", end="\n")


_FENCE = re.compile(r"`{3,}[\w+#.-]*")


def _rich_snippet(runs: tuple[tuple[str, bool], ...]) -> list[RichText]:
    """A snippet's lines as the steps show code: a code block's lines in green without their
    fences, matched words (in prose only) in bold yellow."""
    lines: list[list[tuple[str, bool]]] = [[]]
    for text, marked in runs:
        first, *rest = clean(text).split("\n")
        lines[-1].append((first, marked))
        lines.extend([(line, marked)] for line in rest)
    out = []
    in_code = False
    for pieces in lines:
        whole = "".join(t for t, _ in pieces)
        if _FENCE.fullmatch(whole.strip()):
            in_code = not in_code
            continue
        line = _verbatim("   ") if in_code else RichText("   ")  # code copies as one line
        for t, marked in pieces:
            line.append(t, style="green" if in_code else "bold yellow" if marked else "")
        out.append(line)
    return out


def render_rich(reply: Reply) -> RenderableType:
    """Colour and hyperlinks for ``callboard chat``. Only ``RichText`` objects reach rich (a plain
    ``str`` would be read as markup), each string ``clean``ed. Nothing is drawn around the answer:
    commands, code and URLs are printed unwrapped and unframed, so they copy cleanly."""
    c = clean
    parts: list[RenderableType] = []
    for block in reply.blocks:
        if isinstance(block, Header):
            title = RichText(_capped(c(block.text)), style="bold")
            if block.subtitle:
                title.append(f"  ({c(block.subtitle)})", style="dim")
            parts.append(title)
        elif isinstance(block, Text):
            parts.append(RichText(c(block.text), style="bold" if block.strong else ""))
        elif isinstance(block, Steps):
            for i, item in enumerate(block.items, 1):
                marker = f"{i}." if block.ordered else "•"
                first, *rest = c(item).split("\n")
                parts.append(RichText(f"  {marker} {first}"))
                for code_line in rest:
                    if not code_line.startswith("```"):
                        parts.append(_verbatim(f"     {code_line}", style="green"))
        elif isinstance(block, Code):
            parts.extend(_verbatim(code_line, style="green") for code_line in c(block.text).split("\n"))
        elif isinstance(block, Hits):
            for i, hit in enumerate(block.hits, 1):
                line = RichText(f"{i}. ")
                line.append(c(hit.title), style=Style(bold=True, link=hit.url if _linkable(hit.url) else None))
                line.append(f"  {c(hit.where)}", style="dim")
                parts.append(line)
                parts.extend(_rich_snippet(hit.runs))
                if hit.url:  # shown whole, not only behind the title: a URL to copy
                    parts.append(_verbatim(f"   {c(hit.url)}", style=Style(dim=True, link=hit.url if _linkable(hit.url) else None)))
        elif isinstance(block, Notice):
            style = {"info": "cyan", "warning": "yellow", "error": "bold red"}.get(block.level, "")
            parts.append(RichText(_capped(c(block.text)), style=style))
        elif isinstance(block, Fields):
            table = Table.grid(padding=(0, 2))
            table.add_column(style="bold", no_wrap=True)
            table.add_column()
            for k, v in block.pairs:
                table.add_row(RichText(c(k)), RichText(c(v)))
            parts.append(table)
        elif isinstance(block, ItemList):
            count = block.total if block.total is not None else len(block.items)
            parts.append(RichText(f"{_capped(c(block.title))} ({count}){_page(block)}" if block.items
                                  else f"{_capped(c(block.title))}: {c(block.empty)}", style="bold"))
            for entry in block.items[:_TEXT_LIST]:
                line = RichText("  • " + c(entry.label))
                if entry.detail:
                    line.append(f"  {c(entry.detail)}", style="dim")
                parts.append(line)
            more = _more(block, count)
            if more:
                parts.append(RichText(f"  … and {more} more", style="dim"))
        elif isinstance(block, Links):
            for t, url in block.links:
                line = _verbatim("", "")
                line.append(c(t), style=Style(link=url) if _linkable(url) else "")
                line.append(f" {_one_line(url)}", style="dim")
                parts.append(line)
        elif isinstance(block, Actions):
            shown = [s for s in map(action_text, block.actions) if s]
            if shown:
                parts.append(RichText("Next:", style="dim"))
                parts.extend(_verbatim(f"  {s}", style="cyan") for s in shown)
    return Group(*parts) if parts else RichText("")


def print_rich(console: Console, reply: Reply) -> None:
    """Print ``render_rich(reply)`` as ``callboard chat`` does: prose wraps at the terminal's width,
    while lines to copy (commands, code, URLs) go out whole, not cut at the edge (``crop=False``)."""
    console.print(render_rich(reply), crop=False)
