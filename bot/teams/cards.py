"""Adaptive Cards (schema 1.5, as Teams renders them) for the whole ``Reply`` model and ``Form`` pages.

Plain dicts, no botbuilder. Everything a reply holds may come from a catalog, a repository or the
asker, so none of it may reach Teams as markup: a ``TextBlock`` reads markdown (links, emphasis,
headings) and Teams' ``<at>`` mentions, a ``TextRun`` reads nothing, so every text shown is a
``TextRun`` inside a ``RichTextBlock`` — bold, code, highlighted words and colours are the runs'
own properties. The one ``TextBlock`` Callboard writes holds its own mention of a catalog person it
resolved to a Teams user id (checked against a strict pattern) under a sanitised name; the card's
``msteams.entities`` names exactly those. A link is a run's ``selectAction`` (or an
``Action.OpenUrl``) and only for a plain http(s) URL; the URL is shown as text beside it too.
Control and format characters (escape sequences, bidi overrides, zero-width characters) are
removed from everything shown; code keeps every other character as it is.

A card stays under ``MAX_CARD_BYTES``: long texts are cut where they are, and a card still too big
loses list items and blocks from its end (saying so), never its actions.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from callboard.bot.surface import View
from callboard.commands.api import (
    Action,
    Block,
    Code,
    Fields,
    Header,
    Hit,
    Hits,
    ItemList,
    Links,
    Notice,
    OpenForm,
    OpenUrl,
    Reply,
    RunCommand,
    ShowPage,
    Status,
    Steps,
    Text,
)
from callboard.commands.api import Actions as ActionsBlock
from callboard.commands.forms import Field, FieldType, Form

from .protocol import (
    DATA_COMMAND,
    DATA_FORM,
    DATA_FORM_KEY,
    DATA_FORM_VALUES,
    DATA_PAGE,
    DATA_PAGE_KEY,
    DATA_PICK_COMMAND,
    DATASET_FORM,
    DATASET_PICK,
    PICK_INPUT,
    VERB_PAGE,
    VERB_PICK,
    VERB_RUN,
)

__all__ = [
    "ACTIONS_PER_ROW", "CARD_VERSION", "CONTENT_TYPE", "MAX_ACTIONS", "MAX_CARD_BYTES", "FormTooBig", "attachment",
    "card_bytes", "choices_result", "clean", "fallback_text", "form_values", "line", "linkable", "notice_card", "preview",
    "render", "render_form",
]

CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_VERSION = "1.5"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
#: One card's JSON; Teams refuses an activity over ~28 KB, and the activity wraps the card.
MAX_CARD_BYTES = 24_000
#: Teams shows about six buttons in a row; more go to further rows (further ActionSets).
ACTIONS_PER_ROW = 6
MAX_ACTIONS = 24
#: Teams' typeahead (``application/search``) shows at most this many results.
MAX_SEARCH_RESULTS = 50
_SEARCH_TITLE = 120
_SEARCH_VALUE = 1000
_TITLE = 200  # a header, a label, a button (Teams cuts buttons shorter itself)
_BUTTON = 80
_LINE = 500  # a list item's label or detail, a field's key
_TEXT = 4000  # a paragraph, a field's value
_CODE = 8000  # a code block; cut at a line end
_COMMAND = 2000  # a command line carried by a button
_URL = 2000
_FALLBACK = 1000
_MENTION_NAME = 64
_PICK_CHOICES = 15
#: A Teams user id (``29:…``) or an AAD one (``8:orgid:…``): the only ids Callboard mentions.
TEAMS_USER_ID = re.compile(r"(?:29|8):[A-Za-z0-9_:.-]{1,200}")
_SCHEME = re.compile(r"https?://[^/?#@\s\\]+(?:[/?#]|$)", re.IGNORECASE)
_ASCII_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
#: Teams' markdown and HTML, escaped in the fallback text (an activity's text is markdown).
_FALLBACK_MARKUP = re.compile(r"([\\`*_\[\]#~|])")
#: What a hero or thumbnail card's ``text`` reads as markup (Teams: a subset of HTML; some clients
#: markdown too), written as character references there.
_PREVIEW_MARKUP = re.compile(r"[&<>\[\]()*_`#~|\\!]")
_PREVIEW_TITLE = 80
_PREVIEW_TEXT = 200
_ICONS = {"info": "ℹ️ ", "warning": "⚠️ ", "error": "❌ "}
_COLORS = {"info": "default", "warning": "warning", "error": "attention"}


class FormTooBig(ValueError):
    """A form page Teams cannot show in one dialog; the message says so, for the person."""


# --- text ---------------------------------------------------------------------------------------


def _keep(chunk: str) -> str:
    out = []
    for ch in chunk:
        if ch in "\u2028\u2029":
            out.append("\n")
        elif unicodedata.category(ch) not in ("Cc", "Cf", "Cs"):
            out.append(ch)
    return "".join(out)


def clean(text: str, *, lines: bool = True) -> str:
    """``text`` without control characters (C0, C1; ``\\n`` and ``\\t`` kept when ``lines``), format
    characters (bidi overrides, zero-width) and lone surrogates; nothing else is changed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _ASCII_CONTROLS.sub("", text)
    if not text.isascii():
        text = _NON_ASCII.sub(lambda m: _keep(m.group()), text)
    if not lines:
        text = " ".join(text.split())
    return text


def line(text: str, limit: int = _LINE) -> str:
    """``text`` as one line of plain text: no control or format characters, cut to ``limit``."""
    return _cut(clean(text, lines=False), limit)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def linkable(url: str) -> bool:
    """True when ``url`` may be a link: http(s) with a host (no user part), no whitespace, control or
    format characters, nothing that reads as markup."""
    if not url or len(url) > _URL or not _SCHEME.match(url):
        return False
    return not any(c in '<>"`\\' or c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")
                   for c in url)


def _run(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextRun", "text": text, **style}


def _rich(runs: Iterable[dict[str, Any]], **props: Any) -> dict[str, Any]:
    return {"type": "RichTextBlock", "inlines": [r for r in runs if r["text"]], **props}


def _open_url(url: str, title: str | None = None) -> dict[str, Any]:
    action: dict[str, Any] = {"type": "Action.OpenUrl", "url": url}
    if title:
        action["title"] = title
    return action


def _segments(text: str) -> list[tuple[int, int, bool]]:
    """``text`` as (start, end, code) pieces: fenced blocks (their fence lines left out) and inline
    `code` (its backticks left out) are code, the rest prose."""
    pieces: list[tuple[int, int, bool]] = []

    def prose(start: int, end: int) -> None:
        at = start
        for m in _INLINE_CODE.finditer(text, start, end):
            if m.start() > at:
                pieces.append((at, m.start(), False))
            pieces.append((m.start(1), m.end(1), True))
            at = m.end()
        if end > at:
            pieces.append((at, end, False))

    prose_from, code_from, pos = 0, None, 0
    while pos <= len(text):
        nl = text.find("\n", pos)
        end = len(text) if nl < 0 else nl
        if text[pos:end].lstrip(" \t").startswith("```"):
            if code_from is None:
                prose(prose_from, pos)
                code_from = min(end + 1, len(text))
            else:
                if pos - 1 > code_from:
                    pieces.append((code_from, pos - 1, True))  # up to the newline before the fence
                code_from, prose_from = None, min(end + 1, len(text))
        if nl < 0:
            break
        pos = nl + 1
    if code_from is not None:
        if len(text) > code_from:
            pieces.append((code_from, len(text), True))
    else:
        prose(prose_from, len(text))
    return pieces


def _prose(text: str, marks: Sequence[tuple[int, int]] = (), **style: Any) -> list[dict[str, Any]]:
    """TextRuns for cleaned ``text``: code (inline or fenced) in monospace, its characters exactly as
    they are; ``marks`` (spans of ``text``) highlighted."""
    runs: list[dict[str, Any]] = []
    bounds = sorted({b for span in marks for b in span})
    pieces = _segments(text)
    for i, (start, end, code) in enumerate(pieces):
        cuts = [start, *(b for b in bounds if start < b < end), end]
        for a, b in zip(cuts, cuts[1:]):
            extra: dict[str, Any] = {"fontType": "monospace"} if code else {}
            if any(s <= a and b <= e for s, e in marks):
                extra["highlight"] = True
            runs.append(_run(text[a:b], **style, **extra))
        nxt = pieces[i + 1] if i + 1 < len(pieces) else None
        fenced = code and (end == len(text) or text[end] == "\n")
        if fenced and nxt is not None and not text[nxt[0]:nxt[1]].startswith("\n"):
            runs.append(_run("\n", **style))  # a fenced block ends its line (the fence was the newline)
    return runs


def _paragraph(text: str, limit: int = _TEXT, **style: Any) -> list[dict[str, Any]]:
    return _prose(_cut(clean(text), limit), **style)


# --- blocks -------------------------------------------------------------------------------------


@dataclass
class _Ctx:
    view: View
    #: id() of each mention TextBlock -> the block (kept alive, so its id is never reused) and its
    #: msteams entity; only the entities of blocks the card keeps go into it
    mentions: dict[int, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # mention name -> the user id it stands for


def _mention_name(name: str) -> str:
    """A name Teams reads as markdown inside ``<at>``: letters, digits, spaces and ``.'-`` only (no
    markup, no URL, no entity), one line, short."""
    kept = (c if c in ".'-" or unicodedata.category(c)[0] in "LMN" else " " for c in clean(name, lines=False))
    return _cut(" ".join("".join(kept).split()), _MENTION_NAME)


def _mention(item_person: Any, ctx: _Ctx) -> dict[str, Any] | None:
    """Callboard's own mention of a catalog person resolved to a Teams id; None when there is none,
    the id is not one, or the name is taken by someone else in this card."""
    if item_person is None:
        return None
    user_id = ctx.view.mentions.get(item_person.ref)
    name = _mention_name(item_person.name)
    if not user_id or not TEAMS_USER_ID.fullmatch(user_id) or not name or ctx.names.get(name, user_id) != user_id:
        return None
    ctx.names[name] = user_id
    text = f"<at>{name}</at>"
    block = {"type": "TextBlock", "text": f"• {text}", "wrap": True}
    ctx.mentions[id(block)] = block, {"type": "mention", "text": text, "mentioned": {"id": user_id, "name": name}}
    return block


def _item_list(block: ItemList, ctx: _Ctx, shown: int | None = None) -> dict[str, Any]:
    """A list as a Container: its title and count, one item a line, what is left out."""
    items = block.items if shown is None else block.items[:shown]
    total = block.total if block.total is not None else len(block.items)
    head = [_run(line(block.title, _TITLE), weight="bolder")]
    head.append(_run(f" ({total})") if block.items else _run(": " + line(block.empty)))
    if block.page is not None and block.page[1] > 1:
        head.append(_run(f" — page {block.page[0]} of {block.page[1]}", isSubtle=True))
    elements: list[dict[str, Any]] = [_rich(head)]
    lines: list[dict[str, Any]] = []

    def flush() -> None:
        if lines:
            lines[-1]["text"] = lines[-1]["text"].rstrip("\n")
            elements.append(_rich(list(lines), spacing="none"))
            lines.clear()

    for item in items:
        detail = [_run("  " + line(item.detail), isSubtle=True, italic=True)] if item.detail else []
        mention = _mention(item.person, ctx)
        if mention is None:
            lines.extend([_run("• " + line(item.label)), *detail, _run("\n")])
            continue
        flush()
        columns = [{"type": "Column", "width": "auto", "items": [mention]}]
        if detail:
            columns.append({"type": "Column", "width": "stretch", "items": [_rich(detail)]})
        elements.append({"type": "ColumnSet", "columns": columns, "spacing": "none"})
    flush()
    remaining = total - block.offset - len(block.items)
    if shown is not None and shown < len(block.items):
        elements.append(_rich([_run(f"… and {remaining + len(block.items) - shown} more (cut to fit Teams)",
                                    isSubtle=True)], spacing="none"))
    elif remaining > 0:
        elements.append(_rich([_run(f"… and {remaining} more", isSubtle=True)], spacing="none"))
    return {"type": "Container", "items": elements}


def _code(text: str) -> dict[str, Any]:
    text = clean(text)
    runs = []
    if len(text) > _CODE:
        cut = text.rfind("\n", 0, _CODE)
        kept = text[: cut if cut > 0 else _CODE]
        more = text[len(kept):].strip("\n").count("\n") + 1
        runs = [_run(kept, fontType="monospace"), _run(f"\n… {more} more line(s)", isSubtle=True)]
    else:
        runs = [_run(text, fontType="monospace")]
    return {"type": "Container", "style": "emphasis", "items": [_rich(runs)]}


def _hit(hit: Hit) -> dict[str, Any]:
    title = line(hit.title, _TITLE)
    url = hit.url or ""
    head = [_run(title, weight="bolder", **({"selectAction": _open_url(url)} if linkable(url) else {})),
            _run("  " + line(hit.where), isSubtle=True, italic=True)]
    if url and not linkable(url):
        head.append(_run(f" ({line(url, _URL)})", isSubtle=True))
    text, marks = "", []
    for part, marked in hit.runs:
        part = clean(part)
        if marked:
            marks.append((len(text), len(text) + len(part)))
        text += part
    if len(text) > _TEXT:
        text, marks = text[: _TEXT - 1] + "…", [(s, min(e, _TEXT - 1)) for s, e in marks if s < _TEXT - 1]
    items = [_rich(head), _rich(_prose(text, marks), spacing="none")]
    if linkable(url):  # the page's URL, shown whole so it can be read and copied
        items.append(_rich([_run(url, isSubtle=True, selectAction=_open_url(url))], spacing="none"))
    return {"type": "Container", "items": items}


def _pair(key: str, value: str) -> dict[str, Any]:
    """One field as two columns of runs: a FactSet would read both as markdown."""
    shown = _cut(clean(value), _TEXT) or "-"
    run = _run(shown, selectAction=_open_url(value)) if linkable(value) else _run(shown)
    return {"type": "ColumnSet", "spacing": "small", "columns": [
        {"type": "Column", "width": 1, "items": [_rich([_run(line(key), weight="bolder")])]},
        {"type": "Column", "width": 2, "items": [_rich([run])]}]}


def _link(title: str, url: str) -> dict[str, Any]:
    shown = line(title) or line(url, _URL)
    if not linkable(url):
        return _rich([_run(shown if shown == line(url, _URL) else f"{shown} ({line(url, _URL)})")])
    runs = [_run(shown, selectAction=_open_url(url))]
    if shown != url:  # the URL itself too, as text
        runs.append(_run(f" ({url})", isSubtle=True))
    return _rich(runs)


def _block(block: Block, ctx: _Ctx) -> list[dict[str, Any]]:
    """Card elements for one neutral block (Actions are gathered by ``render``)."""
    if isinstance(block, Header):
        out = [_rich([_run(line(block.text, _TITLE), size="large", weight="bolder")])]
        if block.subtitle:
            out.append(_rich([_run(line(block.subtitle, _TITLE), isSubtle=True)], spacing="none"))
        return out
    if isinstance(block, Text):
        return [_rich(_paragraph(block.text, weight="bolder") if block.strong else _paragraph(block.text))]
    if isinstance(block, Steps):
        return [_rich([_run(f"{i}. " if block.ordered else "• "), *_paragraph(item)], spacing="small")
                for i, item in enumerate(block.items, 1)]
    if isinstance(block, Code):
        return [_code(block.text)]
    if isinstance(block, Hits):
        return [_rich([_run(line(block.title, _TITLE), weight="bolder")]), *(_hit(h) for h in block.hits)]
    if isinstance(block, Fields):
        return [_pair(k, v) for k, v in block.pairs]
    if isinstance(block, ItemList):
        return [_item_list(block, ctx)]
    if isinstance(block, Links):
        return [_link(title, url) for title, url in block.links]
    if isinstance(block, Notice):
        color = _COLORS.get(block.level, "default")
        return [_rich([_run(_ICONS.get(block.level, "")), *_paragraph(block.text, color=color)])]
    raise TypeError(f"no Teams rendering for block {type(block).__name__}")


def _button(title: str) -> str:
    return line(title, _BUTTON) or "Open"


def _action(action: Action, view: View) -> dict[str, Any] | None:
    """An action for a button; None when Teams cannot carry it (a URL that is not plain http(s), a
    command too long, a page without a kept question)."""
    if isinstance(action, RunCommand):
        if len(action.command) > _COMMAND:
            return None
        out = {"type": "Action.Execute", "title": _button(action.label), "verb": VERB_RUN,
               "data": {DATA_COMMAND: action.command}}
        if action.primary:
            out["style"] = "positive"
        return out
    if isinstance(action, OpenUrl):
        return _open_url(action.url, _button(action.label)) if linkable(action.url) else None
    if isinstance(action, OpenForm):
        values = dict(action.values)
        if len(action.form) > _COMMAND or len(json.dumps(values)) > _COMMAND:
            return None
        return {"type": "Action.Submit", "title": _button(action.label), "style": "positive",
                "data": {"msteams": {"type": "task/fetch"}, DATA_FORM: action.form, DATA_FORM_VALUES: values}}
    if isinstance(action, ShowPage):
        if view.page_key is None:
            return None
        return {"type": "Action.Execute", "title": _button(action.label), "verb": VERB_PAGE,
                "data": {DATA_PAGE_KEY: view.page_key, DATA_PAGE: action.page}}
    raise TypeError(f"no Teams rendering for action {type(action).__name__}")


def _picker(reply: Reply, command: str) -> list[dict[str, Any]]:
    """The did-you-mean picker: the candidates the reply lists, and any entity as one types."""
    choices: list[dict[str, str]] = []
    for block in reply.blocks:
        if isinstance(block, ItemList):
            for item in block.items:
                if item.ref and "," not in item.ref and len(choices) < _PICK_CHOICES:
                    title = line(f"{item.label} ({item.detail})" if item.detail else item.label, _SEARCH_TITLE)
                    choices.append({"title": title, "value": item.ref})
    return [
        {"type": "Input.ChoiceSet", "id": PICK_INPUT, "style": "filtered", "label": "Pick the entity you meant",
         "placeholder": "Type a name", "choices": choices,
         "choices.data": {"type": "Data.Query", "dataset": DATASET_PICK + command}},
        {"type": "ActionSet", "actions": [{"type": "Action.Execute", "title": "Show", "verb": VERB_PICK,
                                           "data": {DATA_PICK_COMMAND: command}}]},
    ]


def _action_sets(actions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "ActionSet", "actions": list(actions[i: i + ACTIONS_PER_ROW])}
            for i in range(0, len(actions), ACTIONS_PER_ROW)]


def card_bytes(card: Mapping[str, Any]) -> int:
    """The card's size as JSON with non-ASCII characters escaped: never less than its UTF-8 size, so a
    card within it is within the budget however it is sent."""
    return len(json.dumps(card))


def _entities(node: Any, ctx: _Ctx, out: dict[str, dict[str, Any]]) -> None:
    """The mention entities of the mention blocks under ``node``, each once, by its text."""
    if isinstance(node, dict):
        mention = ctx.mentions.get(id(node))
        if mention is not None:
            out.setdefault(mention[1]["text"], mention[1])
        for value in node.values():
            if isinstance(value, (dict, list)):
                _entities(value, ctx, out)
    elif isinstance(node, list):
        for value in node:
            _entities(value, ctx, out)


def _card(body: list[dict[str, Any]], ctx: _Ctx) -> dict[str, Any]:
    found: dict[str, dict[str, Any]] = {}
    if ctx.mentions:  # the walk over the whole card, only when a mention was written
        _entities(body, ctx, found)
    entities = list(found.values())
    msteams: dict[str, Any] = {"width": "Full"}
    if entities:
        msteams["entities"] = entities
    return {"type": "AdaptiveCard", "$schema": SCHEMA, "version": CARD_VERSION, "body": body, "msteams": msteams}


def _more(parts: int) -> dict[str, Any]:
    return _rich(_prose(f"… and {parts} more part{'s' if parts != 1 else ''}; ask in the terminal "
                        "(`callboard ask`) to see them all", isSubtle=True))


def _largest(fits: Any, n: int) -> int:
    """The largest k in 0..n with fits(k) (fits is monotone); -1 when not even 0 fits."""
    if not fits(0):
        return -1
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def render(reply: Reply, view: View | None = None) -> dict[str, Any]:
    """The Adaptive Card for one reply, within ``MAX_CARD_BYTES`` (and its ``fallbackText``, the reply
    in one line for a client that cannot show the card)."""
    card = _fit(reply, view or View(asked=""))
    card["fallbackText"] = fallback_text(reply)
    return card


def _fit(reply: Reply, view: View) -> dict[str, Any]:
    ctx = _Ctx(view)
    parts: list[tuple[Block, list[dict[str, Any]]]] = []
    actions: list[dict[str, Any]] = []
    for block in reply.blocks:
        if isinstance(block, ActionsBlock):  # actions gather in rows at the end
            actions.extend(a for x in block.actions if (a := _action(x, view)) is not None)
        else:
            parts.append((block, _block(block, ctx)))
    if not parts:
        parts.append((Text(text=reply.summary), _block(Text(text=reply.summary or "Callboard"), ctx)))
    picker = _picker(reply, reply.command) if reply.status is Status.AMBIGUOUS and reply.command else []
    actions = actions[:MAX_ACTIONS]
    while actions and card_bytes(_card([*picker, *_action_sets(actions)], ctx)) > MAX_CARD_BYTES // 2:
        actions.pop()  # buttons carrying long commands: the content matters more than the last of them
    tail = [*picker, *_action_sets(actions)]

    whole = [e for _, elements in parts for e in elements]
    card = _card([*whole, *tail], ctx)
    if card_bytes(card) <= MAX_CARD_BYTES:
        return card

    def fits(body: list[dict[str, Any]], left: int) -> bool:
        note = [_more(left)] if left else []
        return card_bytes(_card([*body, *note, *tail], ctx)) <= MAX_CARD_BYTES

    kept: list[dict[str, Any]] = []
    for i, (block, elements) in enumerate(parts):
        after = len(parts) - i - 1
        if fits([*kept, *elements], after):
            kept.extend(elements)
            continue
        # the block that does not fit: as much of it as fits (a list says itself what it left out)
        if isinstance(block, ItemList):
            # an item's runs are never under 16 bytes of JSON: no more than this many can fit
            n = _largest(lambda k: fits([*kept, _item_list(block, ctx, k)], after),
                         min(len(block.items), MAX_CARD_BYTES // 16))
            if n >= 0:
                kept.append(_item_list(block, ctx, n))
                return _card([*kept, *([_more(after)] if after else []), *tail], ctx)
        else:
            n = _largest(lambda k: fits([*kept, *elements[:k]], after + 1), len(elements))
            kept.extend(elements[:max(n, 0)])
        return _card([*kept, _more(after + 1), *tail], ctx)
    return _card([*kept, *tail], ctx)  # pragma: no cover - the whole card did not fit, so a part did not


def fallback_text(reply: Reply) -> str:
    """The reply in one line for notifications and clients without cards. Teams reads an activity's
    text as markdown (and some HTML), so its markdown characters are escaped and ``<`` ``>`` ``&``
    written as entities: it shows as the plain summary."""
    text = _cut(clean(reply.summary, lines=False), _FALLBACK) or "Callboard"
    text = _FALLBACK_MARKUP.sub(r"\\\1", text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
    # a line that begins like a list item or a heading is one in markdown
    return re.sub(r"^([-+]|\d+[.)])(?=\s)", lambda m: m.group()[:-1] + "\\" + m.group()[-1], text)


def attachment(card: dict[str, Any]) -> dict[str, Any]:
    return {"contentType": CONTENT_TYPE, "content": card}


def preview(title: str, text: str) -> dict[str, Any]:
    """The thumbnail Teams lists for a message extension result. Its title is plain text; its text
    is read as markup, so every markup character there is a character reference (it shows as
    itself whether the client reads HTML or markdown). Both are one line, cut before escaping."""
    shown = line(text, _PREVIEW_TEXT)
    return {"contentType": "application/vnd.microsoft.card.thumbnail",
            "content": {"title": line(title, _PREVIEW_TITLE),
                        "text": _PREVIEW_MARKUP.sub(lambda m: f"&#{ord(m.group())};", shown)}}


# --- forms --------------------------------------------------------------------------------------


def _text_value(current: Any) -> str | None:
    if current is None:
        return None
    if isinstance(current, (list, tuple)):
        return ", ".join(str(v) for v in current)
    return str(current)


def _number(current: Any) -> float | int | None:
    if isinstance(current, bool):
        return None
    if isinstance(current, (int, float)):
        return current
    if isinstance(current, str):
        try:
            return int(current) if re.fullmatch(r"[+-]?\d+", current.strip()) else float(current)
        except ValueError:
            return None
    return None


def _choices(field: Field) -> list[dict[str, str]]:
    return [{"title": line(c.label, _SEARCH_TITLE) or c.value, "value": c.value} for c in field.choices]


def _input(field: Field, current: Any, key: str) -> dict[str, Any]:
    """The input for one field type; its id is the field's name."""
    kind = field.type
    base: dict[str, Any] = {"id": field.name, "label": line(field.label, _TITLE) or field.name}
    if field.required and kind is not FieldType.BOOLEAN:
        base.update(isRequired=True, errorMessage="Required")
    placeholder = line(field.placeholder, _TITLE) if field.placeholder else None
    # validation (patterns, lengths, kinds) is the form owner's, on the server: no ``regex`` here
    if kind in (FieldType.TEXT, FieldType.MULTILINE, FieldType.PASSWORD, FieldType.STRINGS, FieldType.REPO_URL):
        out = {"type": "Input.Text", **base}
        if kind is FieldType.MULTILINE:
            out["isMultiline"] = True
        if kind is FieldType.PASSWORD:
            out["style"] = "password"
        elif (value := _text_value(current)) is not None:
            out["value"] = clean(value)
        if field.max_length is not None and kind in (FieldType.TEXT, FieldType.MULTILINE, FieldType.PASSWORD):
            out["maxLength"] = field.max_length
        placeholder = placeholder or ("one or more, separated by commas" if kind is FieldType.STRINGS
                                      else "github.com?owner=…&repo=…" if kind is FieldType.REPO_URL else None)
        if placeholder:
            out["placeholder"] = placeholder
        return out
    if kind in (FieldType.NUMBER, FieldType.INTEGER):
        out = {"type": "Input.Number", **base}
        if (number := _number(current)) is not None:
            out["value"] = number
        if field.minimum is not None:
            out["min"] = field.minimum
        if field.maximum is not None:
            out["max"] = field.maximum
        if placeholder:
            out["placeholder"] = placeholder
        return out
    if kind is FieldType.BOOLEAN:
        on = current is True or (isinstance(current, str) and current.strip().lower() in ("true", "yes", "on", "1"))
        # the toggle's title is read as markdown by some clients: a fixed word, the label above it
        return {"type": "Input.Toggle", **base, "title": "Yes", "valueOn": "true", "valueOff": "false",
                "value": "true" if on else "false"}
    if kind in (FieldType.CHOICE, FieldType.MULTI_CHOICE):
        choices = _choices(field)
        values = {c["value"] for c in choices}
        # compact (a dropdown) for both: expanded radio buttons and checkboxes read titles as markdown
        out = {"type": "Input.ChoiceSet", **base, "style": "compact", "choices": choices}
        if kind is FieldType.MULTI_CHOICE:
            out["isMultiSelect"] = True
            picked = [str(v) for v in current if str(v) in values] if isinstance(current, (list, tuple)) else []
            if picked:
                out["value"] = ",".join(picked)
        elif current is not None and str(current) in values:
            out["value"] = str(current)
        out["placeholder"] = placeholder or ("Choose any" if kind is FieldType.MULTI_CHOICE else "Choose one")
        return out
    if kind is FieldType.ENTITY:
        choices = _choices(field)[:MAX_SEARCH_RESULTS]
        value = _text_value(current)
        # a value prefilled from a button's data is anyone's text: it is the input's value as well as shown
        value = clean(value, lines=False) if value else value
        if value and value not in {c["value"] for c in choices}:
            choices.insert(0, {"title": line(value, _SEARCH_TITLE), "value": value})  # so it shows
        out = {"type": "Input.ChoiceSet", **base, "style": "filtered", "choices": choices,
               "choices.data": {"type": "Data.Query", "dataset": f"{DATASET_FORM}{key}:{field.name}"},
               "placeholder": placeholder or "Search the catalog"}
        if value:
            out["value"] = value
        return out
    raise ValueError(f'Teams cannot show a field of type "{getattr(kind, "value", kind)}" (field "{field.name}")')


def render_form(form: Form, key: str) -> dict[str, Any]:
    """The dialog card for the form's current page; submitting it comes back with ``key``. Errors
    are listed at the top and each under its input (Teams has no per-input errors from a server)."""
    page = form.current
    body: list[dict[str, Any]] = [_rich([_run(line(form.title, _TITLE), size="large", weight="bolder")])]
    if len(form.pages) > 1:
        body.append(_rich([_run(f"Step {form.page + 1} of {len(form.pages)}: {line(page.title, _TITLE)}",
                                isSubtle=True)], spacing="none"))
    elif page.title and line(page.title) != line(form.title):
        body.append(_rich([_run(line(page.title, _TITLE), weight="bolder")], spacing="none"))
    if page.description:
        body.append(_rich(_paragraph(page.description)))
    if form.errors:
        labels = {f.name: f.label for p in form.pages for f in p.fields}
        lines = [f"{line(labels.get(e.field, e.field))}: {line(e.message)}" if e.field else line(e.message)
                 for e in form.errors]
        body.append({"type": "Container", "style": "attention", "items": [
            _rich([_run("\n".join(lines), color="attention")])]})
    body.extend(_pair(label, value) for label, value in page.review)
    errors: dict[str, list[str]] = {}
    for error in form.errors:
        errors.setdefault(error.field, []).append(line(error.message))
    for f in page.fields:
        current = form.values.get(f.name)
        body.append(_input(f, current if current is not None else f.default, key))
        if f.name in errors:
            body.append(_rich([_run("; ".join(errors[f.name]), color="attention")], spacing="none"))
        if f.help:
            body.append(_rich([_run(_cut(clean(f.help), _TEXT), isSubtle=True)], spacing="none"))
    card = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": CARD_VERSION, "body": body,
            "actions": [{"type": "Action.Submit", "title": _button("Create" if form.last_page else form.submit_label),
                         "style": "positive", "data": {DATA_FORM_KEY: key}}]}
    if card_bytes(card) > MAX_CARD_BYTES:
        raise FormTooBig(f"The page \"{line(page.title, 100)}\" of {line(form.title, 100)} is more than Teams "
                         "shows in one dialog; fill it in in the terminal with `callboard create`.")
    return card


def notice_card(title: str, text: str) -> dict[str, Any]:
    """A card that only says something (a form that cannot go on)."""
    return {"type": "AdaptiveCard", "$schema": SCHEMA, "version": CARD_VERSION, "body": [
        _rich([_run(line(title, _TITLE) or "Callboard", size="medium", weight="bolder")]),
        _rich(_paragraph(text))]}


def _plain_value(value: Any) -> bool:
    if isinstance(value, (str, bool, int, float)):
        return True
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def form_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """A dialog's submitted data as values by field name, as Teams sent them (strings; a
    multi-select's ``"a,b"`` stays one string): the form's owner converts and validates them."""
    return {name: value for name, value in data.items()
            if isinstance(name, str) and name not in ("msteams", DATA_FORM_KEY) and _plain_value(value)}


def choices_result(choices: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """Typeahead results (``application/search``) from (value, label) pairs, within Teams' limits: a
    value too long to carry is left out (cut, it would name something else)."""
    out: list[dict[str, str]] = []
    for value, label in choices:
        if not value or len(value) > _SEARCH_VALUE:
            continue
        out.append({"title": line(label, _SEARCH_TITLE) or line(value, _SEARCH_TITLE), "value": value})
        if len(out) == MAX_SEARCH_RESULTS:
            break
    return out
