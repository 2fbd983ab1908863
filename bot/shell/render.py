"""The terminal renderer: a ``Reply`` as plain text, or as rich output for ``callboard chat``."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text as RichText

from callboard.commands.api import Actions, Fields, Header, ItemList, Links, Notice, Reply, Text

__all__ = ["render_json", "render_rich", "render_text"]

_MARK = {"info": "i", "warning": "!", "error": "x"}
_TEXT_LIST = 25


def render_text(reply: Reply) -> str:
    """Plain text, no colour: what ``callboard ask`` prints and what tests read."""
    out: list[str] = []
    for block in reply.blocks:
        if isinstance(block, Header):
            out.append(block.text + (f"  ({block.subtitle})" if block.subtitle else ""))
        elif isinstance(block, Text):
            out.append(block.text)
        elif isinstance(block, Notice):
            out.append(f"[{_MARK.get(block.level, '-')}] {block.text}")
        elif isinstance(block, Fields):
            width = max((len(k) for k, _ in block.pairs), default=0)
            out.extend(f"  {k.ljust(width)}  {v}" for k, v in block.pairs)
        elif isinstance(block, ItemList):
            count = block.total if block.total is not None else len(block.items)
            out.append(f"{block.title} ({count}):" if block.items else f"{block.title}: {block.empty}")
            for item in block.items[:_TEXT_LIST]:
                out.append(f"  - {item.label}" + (f"  ({item.detail})" if item.detail else ""))
            if count > min(len(block.items), _TEXT_LIST):
                out.append(f"  ... and {count - min(len(block.items), _TEXT_LIST)} more (--format json lists them all)")
        elif isinstance(block, Links):
            out.append("Links:")
            out.extend(f"  - {title}: {url}" for title, url in block.links)
        elif isinstance(block, Actions):
            out.append("Next: " + " | ".join(f"`{a.command}`" for a in block.actions))
    return "\n".join(out)


def render_json(reply: Reply) -> str:
    payload: dict[str, Any] = {"status": reply.status.value, "summary": reply.summary, **reply.data}
    payload["text"] = render_text(reply)
    return json.dumps(payload, indent=2, ensure_ascii=False, default=str)


def render_rich(reply: Reply) -> RenderableType:
    parts: list[RenderableType] = []
    title: str | None = None
    for block in reply.blocks:
        if isinstance(block, Header):
            title = block.text + (f" [dim]({block.subtitle})[/dim]" if block.subtitle else "")
        elif isinstance(block, Text):
            parts.append(RichText(block.text))
        elif isinstance(block, Notice):
            style = {"info": "cyan", "warning": "yellow", "error": "bold red"}.get(block.level, "")
            parts.append(RichText(block.text, style=style))
        elif isinstance(block, Fields):
            table = Table.grid(padding=(0, 2))
            table.add_column(style="bold")
            table.add_column()
            for k, v in block.pairs:
                table.add_row(k, v)
            parts.append(table)
        elif isinstance(block, ItemList):
            count = block.total if block.total is not None else len(block.items)
            parts.append(RichText(f"{block.title} ({count})" if block.items else f"{block.title}: {block.empty}",
                                  style="bold"))
            for item in block.items[:_TEXT_LIST]:
                line = RichText("  • " + item.label)
                if item.detail:
                    line.append(f"  {item.detail}", style="dim")
                parts.append(line)
            if count > min(len(block.items), _TEXT_LIST):
                parts.append(RichText(f"  … and {count - min(len(block.items), _TEXT_LIST)} more", style="dim"))
        elif isinstance(block, Links):
            for t, url in block.links:
                parts.append(RichText.from_markup(f"[link={url}]{t}[/link] [dim]{url}[/dim]"))
        elif isinstance(block, Actions):
            parts.append(RichText("Next: " + "  ".join(a.command for a in block.actions), style="dim"))
    body = Group(*parts) if parts else RichText("")
    return Panel(body, title=title, title_align="left", expand=False) if title else body
