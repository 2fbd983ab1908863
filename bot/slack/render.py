"""Block Kit renderer for the whole ``Reply`` model, built with ``slack_sdk.models``.

Slack's limits are checked by ``validate_json()`` before anything is sent; long
content is cut inside them ("… and N more") with Next/Previous buttons that
re-run the command at another page. Every message carries a plain-text fallback.

Everything a reply holds may come from a catalog, a repository or the asker, so none
of it may reach Slack live: every string that goes into mrkdwn (and the fallback
``text``, which Slack reads as mrkdwn too) is escaped (``&`` ``<`` ``>``); a URL
becomes a link only when it is a plain http(s) URL that cannot leave ``<url|label>``
(otherwise it is shown as text); mrkdwn objects are ``verbatim`` so Slack does not
turn plain ``@channel`` or channel names into anything. The only ``<…>`` Callboard
writes are those links and its own mentions (catalog users it resolved to Slack
ids). ``plain_text`` objects (headers, buttons) are never parsed by Slack and are
not escaped. Text is cut where it cannot split an entity or a link.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.blocks.block_elements import ExternalDataSelectElement

from slack_sdk.models.blocks import Block as SlackBlock

from callboard.bot.surface import View
from callboard.commands.api import (
    Action,
    Actions,
    Block,
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
    Status,
    Steps,
    Text,
)

__all__ = ["MAX_BLOCKS", "PAGE_SIZE", "Raw", "SlackMessage", "escape", "link", "linkable", "md", "render"]

MAX_BLOCKS = 50
PAGE_SIZE = 15
_SECTION_TEXT = 3000
_FIELD_TEXT = 2000
_HEADER_TEXT = 150
_BUTTON_TEXT = 75
_VALUE = 2000
_ICONS = {"info": ":information_source:", "warning": ":warning:", "error": ":x:"}
_FALLBACK_TEXT = 3000
_URL_TEXT = 2000
#: A Slack user or workspace-user id, the only thing Callboard puts inside ``<@…>``.
_SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")
_SCHEME = re.compile(r"https?://[^/?#@\s]+(?:[/?#]|$)", re.IGNORECASE)
_ACTIONS_MAX = 25


@dataclass(frozen=True, slots=True)
class SlackMessage:
    text: str
    blocks: list[dict[str, Any]]


def escape(text: str) -> str:
    """Slack's three control characters, for any text that goes into mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def linkable(url: str) -> bool:
    """True when ``url`` can be a Slack link: http(s) with a host, and nothing that could end
    ``<url|label>`` or hide in it (``<`` ``>`` ``|``, whitespace, control or format characters)."""
    if not url or len(url) > _URL_TEXT or not _SCHEME.match(url):
        return False
    return not any(c in "<>|" or c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in url)


def link(url: str, label: str | None = None) -> Raw:
    """A link to a checked URL with an escaped one-line label; a URL that is not linkable is shown
    as escaped text (beside its label), never as a link."""
    shown = " ".join((label or "").split()) or url
    if linkable(url):
        return Raw(f"<{escape(url)}|{escape(_cut_plain(shown, 300))}>")
    return Raw(escape(shown) if shown == url else f"{escape(shown)} ({escape(url)})")


class Raw(str):
    """Finished mrkdwn that is never cut inside: a link, a mention, a formatting mark."""


def md(*parts: str, limit: int = _SECTION_TEXT) -> str:
    """mrkdwn from ``parts``: plain ``str`` parts are escaped, ``Raw`` parts are kept whole. Cut to
    ``limit`` characters *before* escaping, so a cut never lands inside ``&lt;``, a link or a mention:
    a raw part that does not fit is left out whole, a plain part is cut between characters."""
    out: list[str] = []
    used = 0
    for part in parts:
        piece = part if isinstance(part, Raw) else escape(part)
        if used + len(piece) <= limit:
            out.append(piece)
            used += len(piece)
            continue
        room = limit - 1 - used  # one for the ellipsis
        if not isinstance(part, Raw):
            kept = []
            for ch in part:
                e = escape(ch)
                if len(e) > room:
                    break
                kept.append(e)
                room -= len(e)
            out.append("".join(kept))
        out.append("…")
        break
    return "".join(out)


def _cut(text: str, limit: int) -> str:
    """Plain text, escaped and cut to ``limit`` (the cut made before escaping)."""
    return md(text, limit=limit)


def _cut_plain(text: str, limit: int) -> str:
    """plain_text is shown as it is, so any cut is a clean one."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _md(text: str) -> MarkdownTextObject:
    """A mrkdwn object for already escaped text; ``verbatim``: no automatic parsing of what is left."""
    return MarkdownTextObject(text=text, verbatim=True)


def _button(text: str, action_id: str, value: str, style: str | None = None) -> ButtonElement:
    return ButtonElement(text=PlainTextObject(text=_cut_plain(text, _BUTTON_TEXT)), action_id=action_id,
                         value=_cut_plain(value, _VALUE), style=style)


def _mention(ref: str | None, mentions: Mapping[str, str]) -> Raw | None:
    """Callboard's own mention of a catalog user it resolved to a Slack id (and only a Slack id)."""
    slack_id = mentions.get(ref) if ref else None
    if slack_id and _SLACK_USER_ID.fullmatch(slack_id):
        return Raw(f"<@{slack_id}>")
    return None


def _section(*parts: str) -> SectionBlock:
    return SectionBlock(text=_md(md(*parts)))


def _context(*parts: str) -> ContextBlock:
    return ContextBlock(elements=[_md(md(*parts))])


def _action_button(action: Action, index: int, view: View) -> ButtonElement | None:
    """A button for one action; None when the platform cannot carry it (a value over Slack's
    limit, a URL that is not plain http(s), a page without a kept question)."""
    if isinstance(action, RunCommand):
        if len(action.command) > _VALUE:
            return None
        return _button(action.label, f"run:{index}", action.command, style="primary" if action.primary else None)
    if isinstance(action, OpenUrl):
        if not linkable(action.url):
            return None
        return ButtonElement(text=PlainTextObject(text=_cut_plain(action.label, _BUTTON_TEXT)), action_id=f"url:{index}",
                             url=action.url)
    if isinstance(action, OpenForm):
        value = json.dumps({"f": action.form, "v": dict(action.values)})
        return None if len(value) > _VALUE else _button(action.label, "form:open", value, style="primary")
    if isinstance(action, ShowPage):
        if view.page_key is None:
            return None
        return _button(action.label, "page:next" if action.label == "Next" else "page:prev",
                       f"{view.page_key}:{action.page}")
    raise TypeError(f"no Slack rendering for action {type(action).__name__}")


def _block(block: Block, view: View) -> Sequence[SlackBlock]:
    """Block Kit for one neutral block."""
    if isinstance(block, Header):
        out: list[SlackBlock] = [HeaderBlock(text=PlainTextObject(text=_cut_plain(block.text, _HEADER_TEXT)))]
        if block.subtitle:
            out.append(_context(block.subtitle))
        return out
    if isinstance(block, Text):
        return [_section(Raw("*"), block.text, Raw("*")) if block.strong else _section(block.text)]
    if isinstance(block, Steps):
        return _sections([[Raw(f"{i}. " if block.ordered else "• "), _fences(item)]
                          for i, item in enumerate(block.items, 1)])
    if isinstance(block, Code):
        return _sections([[Raw("```"), block.text, Raw("```")]])
    if isinstance(block, Hits):
        out = []
        for hit in block.hits:
            title = link(hit.url, hit.title) if hit.url else hit.title
            # bold in prose only: the index never marks a word inside code, where * would show
            snippet = [part for t, marked in hit.runs for part in (_marked(t) if marked else (_fences(t),))]
            # the page's URL shown whole (one that cannot be a link is already beside the title)
            url = [Raw("\n"), link(hit.url)] if hit.url and linkable(hit.url) else []
            out.append(_section(Raw("*"), title, Raw("*  _"), hit.where, Raw("_\n"), *snippet, *url))
        return out
    if isinstance(block, Notice):
        return [_context(Raw(_ICONS.get(block.level, "") + " "), block.text)]
    if isinstance(block, Fields):
        fields = [_md(md(Raw("*"), k, Raw("*\n"), v, limit=_FIELD_TEXT)) for k, v in block.pairs]
        return [SectionBlock(fields=fields[i : i + 10]) for i in range(0, len(fields), 10)]  # 10 per section
    if isinstance(block, ItemList):
        return [_list_section(block, view.mentions)]
    if isinstance(block, Links):
        # the URL itself shown too (as text: one link per line), so it can be read and copied
        return _sections([[link(url, title), *((" (", url, ")") if linkable(url) and " ".join(title.split()) != url else ())]
                          for title, url in block.links])
    if isinstance(block, Actions):
        buttons = [b for i, a in enumerate(block.actions[:25]) if (b := _action_button(a, i, view)) is not None]
        return [ActionsBlock(elements=buttons)] if buttons else []
    raise TypeError(f"no Slack rendering for block {type(block).__name__}")


def render(reply: Reply, view: View | None = None, *, shareable: bool = False) -> SlackMessage:
    """Blocks and fallback text for one reply. ``shareable``: the message is private to the asker,
    so an answer gets a "Share in channel" button (errors and usage never do)."""
    view = view or View(asked="")
    blocks: list[SlackBlock] = []
    nav: list[ButtonElement] = []
    for block in reply.blocks:
        rendered = _block(block, view)
        if isinstance(block, Actions) and rendered:  # actions gather in one row at the end
            assert isinstance(rendered[0], ActionsBlock)
            nav.extend(e for e in rendered[0].elements if isinstance(e, ButtonElement))
        else:
            blocks.extend(rendered)
    if reply.status is Status.AMBIGUOUS and reply.command:
        blocks.append(
            ActionsBlock(
                block_id=_cut_plain(f"pick:{reply.command}", 255),
                elements=[
                    ExternalDataSelectElement(
                        action_id="entity_pick",
                        placeholder=PlainTextObject(text="Pick the entity you meant"),
                        min_query_length=1,
                    )
                ],
            )
        )
    if shareable and reply.status is Status.OK and view.asked and len(view.asked) <= _VALUE:
        nav.append(_button("Share in channel", "share", view.asked, style="primary"))
    if nav:
        # action ids must be unique within a message; run:<i> counts per Actions block, so renumber
        seen: dict[str, int] = {}
        for element in nav:
            action_id = element.action_id or ""
            if action_id in seen:
                seen[action_id] += 1
                element.action_id = f"{action_id}.{seen[action_id]}"
            else:
                seen[action_id] = 0
        for i in range(0, len(nav[:_ACTIONS_MAX]), 25):
            blocks.append(ActionsBlock(block_id="nav" if i == 0 else f"nav{i}", elements=nav[i : i + 25]))
    if len(blocks) > MAX_BLOCKS:
        tail: list[SlackBlock] = [b for b in blocks if b.type == "actions"][-1:]
        body = [b for b in blocks if b not in tail]
        dropped = len(body) - (MAX_BLOCKS - 1 - len(tail))
        blocks = body[: MAX_BLOCKS - 1 - len(tail)] + [
            _context(f"… and {dropped} more parts; ask in the terminal (`callboard ask`) to see them all")] + tail
    out = []
    for b in blocks:
        b.validate_json()
        out.append(b.to_dict())
    return SlackMessage(text=_cut(reply.summary or "Callboard", _FALLBACK_TEXT), blocks=out)


_FENCE_LANGUAGE = re.compile(r"^(```+)[\w+#.-]+$", re.MULTILINE)


def _fences(text: str) -> str:
    """Code fences as Slack reads them: it has no language hint and would show ``bash`` as code."""
    return _FENCE_LANGUAGE.sub(r"\1", text)


def _marked(text: str) -> tuple[str, ...]:
    """A matched word in bold; Slack needs the asterisks against the word, not its spaces."""
    stripped = text.strip()
    if not stripped:
        return (text,)
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :]
    return (lead, Raw("*"), stripped, Raw("*"), trail)


def _sections(lines: list[list[str]]) -> list[SectionBlock]:
    """Lines (each a list of md parts) packed into as few sections as Slack's 3,000 characters
    allow; an over-long line is cut, keeping a code block's fences closed."""
    out: list[SectionBlock] = []
    current = ""
    for parts in lines:
        if parts and parts[-1] == "```" and isinstance(parts[-1], Raw):
            line = md(*parts[:-1], limit=_SECTION_TEXT - 3) + "```"
        else:
            line = md(*parts)
        if current and len(current) + 1 + len(line) > _SECTION_TEXT:
            out.append(SectionBlock(text=_md(current)))
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        out.append(SectionBlock(text=_md(current)))
    return out


def _list_section(block: ItemList, mentions: Mapping[str, str]) -> SectionBlock:
    items = block.items
    total = block.total if block.total is not None else len(items)
    if items:
        header: list[str] = [Raw("*"), block.title, Raw(f"* ({total})")]
    else:
        header = [Raw("*"), block.title, Raw("*: "), block.empty]
    if block.page is not None and block.page[1] > 1:
        header.append(f" — page {block.page[0]} of {block.page[1]}")
    lines: list[list[str]] = []
    for item in items:
        person = _mention(item.person.ref if item.person else None, mentions)
        line: list[str] = [Raw("• "), person or item.label]
        if item.detail:
            line += [Raw("  _"), item.detail, Raw("_")]
        lines.append(line)
    remaining = total - block.offset - len(items)
    more = [[f"… and {remaining} more"]] if remaining > 0 else []
    shown = lines
    while True:
        text = md(*header, *(p for line in [*shown, *more] for p in (Raw("\n"), *line)))
        if len(text) < _SECTION_TEXT or not shown:
            return SectionBlock(text=_md(text))
        shown = shown[:-1]  # whole lines go, never half of one
        more = [[f"… and {remaining + len(lines) - len(shown)} more (cut to fit Slack)"]]
