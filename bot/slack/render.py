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
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.blocks.block_elements import ExternalDataSelectElement

from callboard.commands.api import Actions, Code, Fields, Header, Hits, ItemList, Links, Notice, Reply, Status, Steps, Text

__all__ = ["MAX_BLOCKS", "PAGE_SIZE", "SlackMessage", "escape", "link", "linkable", "render"]

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
#: Buttons on an entity card: label and the command they run, shown when registered.
ENTITY_BUTTONS = (("Owner", "owner"), ("On-call", "oncall"), ("Runbook", "runbook"), ("Docs", "docs"),
                  ("Dependencies", "deps"))


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


def link(url: str, label: str | None = None) -> str:
    """A link to a checked URL with an escaped one-line label; a URL that is not linkable is shown
    as escaped text (beside its label), never as a link."""
    shown = " ".join((label or "").split()) or url
    if linkable(url):
        return f"<{escape(url)}|{escape(shown)}>"
    return escape(shown) if shown == url else f"{escape(shown)} ({escape(url)})"


def _cut(text: str, limit: int) -> str:
    """Escaped mrkdwn cut to ``limit`` characters, never inside an entity (``&lt;``) or a
    ``<url|label>`` / ``<@U…>``: the cut moves back to before it."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    opened = head.rfind("<")
    if opened != -1 and ">" not in head[opened:]:
        head = head[:opened]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    return head + "…"


def _cut_plain(text: str, limit: int) -> str:
    """plain_text is shown as it is, so any cut is a clean one."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _md(text: str) -> MarkdownTextObject:
    """A mrkdwn object for already escaped text; ``verbatim``: no automatic parsing of what is left."""
    return MarkdownTextObject(text=text, verbatim=True)


def _button(text: str, action_id: str, value: str, style: str | None = None) -> ButtonElement:
    return ButtonElement(text=PlainTextObject(text=_cut_plain(text, _BUTTON_TEXT)), action_id=action_id,
                         value=_cut_plain(value, _VALUE), style=style)


def _mention(ref: str | None, mentions: Mapping[str, str]) -> str | None:
    """Callboard's own mention of a catalog user it resolved to a Slack id (and only a Slack id)."""
    slack_id = mentions.get(ref) if ref else None
    if slack_id and _SLACK_USER_ID.fullmatch(slack_id):
        return f"<@{slack_id}>"
    return None


def render(
    reply: Reply,
    *,
    command_text: str = "",
    page: int = 1,
    commands: Collection[str] = (),
    mentions: Mapping[str, str] | None = None,
    shareable: bool = False,
) -> SlackMessage:
    """Blocks and fallback text for one reply.

    ``command_text`` is what the user asked (paging and sharing re-run it);
    ``commands`` are the registered command names (entity-card buttons only for
    those); ``mentions`` maps catalog user refs to Slack user ids.
    """
    mentions = mentions or {}
    blocks: list[Block] = []
    pages_needed = 1
    for block in reply.blocks:
        if isinstance(block, Header):
            blocks.append(HeaderBlock(text=PlainTextObject(text=_cut_plain(block.text, _HEADER_TEXT))))
            if block.subtitle:
                blocks.append(ContextBlock(elements=[_md(_cut(escape(block.subtitle), _SECTION_TEXT))]))
        elif isinstance(block, Text):
            text = f"*{escape(block.text)}*" if block.strong else escape(block.text)
            blocks.append(SectionBlock(text=_md(_cut(text, _SECTION_TEXT))))
        elif isinstance(block, Steps):
            lines = [
                (f"{i}. " if block.ordered else "• ") + escape(item)
                for i, item in enumerate(block.items, 1)
            ]
            blocks.extend(_sections(lines))
        elif isinstance(block, Code):
            blocks.extend(_sections(["```" + escape(block.text) + "```"]))
        elif isinstance(block, Hits):
            for hit in block.hits:
                title = link(hit.url, hit.title) if hit.url else escape(hit.title)
                snippet = "".join(_marked(t) if marked else escape(t) for t, marked in hit.runs)
                text = f"*{title}*  _{escape(hit.where)}_\n{snippet}"
                blocks.append(SectionBlock(text=_md(_cut(text, _SECTION_TEXT))))
        elif isinstance(block, Notice):
            icon = _ICONS.get(block.level, "")
            blocks.append(ContextBlock(elements=[_md(_cut(f"{icon} {escape(block.text)}", _SECTION_TEXT))]))
        elif isinstance(block, Fields):
            fields = [_md(_cut(f"*{escape(k)}*\n{escape(v)}", _FIELD_TEXT)) for k, v in block.pairs]
            for i in range(0, len(fields), 10):  # at most 10 fields per section
                blocks.append(SectionBlock(fields=fields[i : i + 10]))
        elif isinstance(block, ItemList):
            section, pages = _list_section(block, page, mentions)
            pages_needed = max(pages_needed, pages)
            blocks.append(section)
        elif isinstance(block, Links):
            lines = [link(l_url, title) for title, l_url in block.links]
            blocks.extend(_sections(lines))
        elif isinstance(block, Actions):
            buttons = [_button(a.label, f"run:{i}", a.command) for i, a in enumerate(block.actions[:25])]
            if buttons:
                blocks.append(ActionsBlock(block_id="actions", elements=buttons))
    if reply.status is Status.AMBIGUOUS and command_text:
        verb = command_text.split()[0] if command_text.split() else "info"
        blocks.append(
            ActionsBlock(
                block_id=_cut_plain(f"pick:{verb}", 255),
                elements=[
                    ExternalDataSelectElement(
                        action_id="entity_pick",
                        placeholder=PlainTextObject(text="Pick the entity you meant"),
                        min_query_length=1,
                    )
                ],
            )
        )
    entity = reply.data.get("entity") if reply.status is Status.OK else None
    nav: list[ButtonElement] = []
    if isinstance(entity, str):
        asked = command_text.split()[0] if command_text.split() else ""
        for label, cmd in ENTITY_BUTTONS:
            if cmd in commands and cmd != asked:
                nav.append(_button(label, f"card:{cmd}", f"{cmd} {entity}"))
    if pages_needed > 1 and command_text:
        if page > 1:
            nav.append(_button("Previous", "page:prev", json.dumps({"t": command_text, "p": page - 1})))
        if page < pages_needed:
            nav.append(_button("Next", "page:next", json.dumps({"t": command_text, "p": page + 1})))
    if shareable and command_text:
        nav.append(_button("Share in channel", "share", command_text, style="primary"))
    if nav:
        blocks.append(ActionsBlock(block_id="nav", elements=nav[:25]))
    if len(blocks) > MAX_BLOCKS:
        dropped = len(blocks) - (MAX_BLOCKS - 1)
        blocks = blocks[: MAX_BLOCKS - 2] + [
            ContextBlock(elements=[_md(_cut(f"… and {dropped} more parts; see `{escape(command_text)}` in the terminal",
                                             _SECTION_TEXT))]),
            blocks[-1],
        ]
    out = []
    for b in blocks:
        b.validate_json()
        out.append(b.to_dict())
    return SlackMessage(text=_cut(escape(reply.summary or "Callboard"), _FALLBACK_TEXT), blocks=out)


def _marked(text: str) -> str:
    """A matched word in bold; Slack needs the asterisks against the word, not its spaces."""
    stripped = text.strip()
    if not stripped:
        return escape(text)
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :]
    return f"{lead}*{escape(stripped)}*{trail}"


def _sections(lines: list[str]) -> list[SectionBlock]:
    """Lines packed into as few sections as Slack's 3,000 characters allow; an over-long line
    (a big code block) is cut, keeping its fences closed."""
    out: list[SectionBlock] = []
    current = ""
    for line in lines:
        if len(line) > _SECTION_TEXT:
            closing = "```" if line.count("```") % 2 == 0 and line.endswith("```") else ""
            line = _cut(line, _SECTION_TEXT - len(closing)) + closing
        if current and len(current) + 1 + len(line) > _SECTION_TEXT:
            out.append(SectionBlock(text=_md(current)))
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        out.append(SectionBlock(text=_md(current)))
    return out


def _list_section(block: ItemList, page: int, mentions: Mapping[str, str]) -> tuple[SectionBlock, int]:
    items = block.items
    total = block.total if block.total is not None else len(items)
    pages = max(1, -(-len(items) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    shown = items[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    lines = []
    for item in shown:
        label = _mention(item.ref, mentions) or escape(item.label)
        lines.append(f"• {label}" + (f"  _{escape(item.detail)}_" if item.detail else ""))
    header = f"*{escape(block.title)}* ({total})" if items else f"*{escape(block.title)}*: {escape(block.empty)}"
    if pages > 1:
        header += f" — page {page} of {pages}"
    remaining = total - (page - 1) * PAGE_SIZE - len(shown)
    if remaining > 0:
        lines.append(f"… and {remaining} more")
    text = header + ("\n" + "\n".join(lines) if lines else "")
    while len(text) > _SECTION_TEXT and lines:
        lines.pop(-2 if len(lines) > 1 else -1)
        text = header + "\n" + "\n".join(lines) + "\n… (cut to fit Slack)"
    return SectionBlock(text=_md(_cut(text, _SECTION_TEXT))), pages
