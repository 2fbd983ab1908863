"""The terminal renderer: a ``Reply`` as plain text, or as rich output for ``callboard chat``."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text as RichText

from callboard.commands.api import Actions, Code, Fields, Header, Hits, ItemList, Links, Notice, Reply, Steps, Text

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
            out.append(f"## {block.text}" if block.strong else block.text)
        elif isinstance(block, Steps):
            for i, item in enumerate(block.items, 1):
                marker = f"{i}." if block.ordered else "-"
                first, *rest = item.split("\n")
                out.append(f"  {marker} {first}")
                out.extend(f"     {line}" for line in rest)
        elif isinstance(block, Code):
            out.append("```" + (block.language or ""))
            out.extend(block.text.split("\n"))
            out.append("```")
        elif isinstance(block, Hits):
            for i, hit in enumerate(block.hits, 1):
                out.append(f"{i}. {hit.title}  ({hit.where})")
                out.append("   " + "".join(f"**{t}**" if marked else t for t, marked in hit.runs))
                if hit.url:
                    out.append(f"   {hit.url}")
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
            parts.append(RichText(block.text, style="bold" if block.strong else ""))
        elif isinstance(block, Steps):
            for i, item in enumerate(block.items, 1):
                marker = f"{i}." if block.ordered else "•"
                first, *rest = item.split("\n")
                parts.append(RichText(f"  {marker} {first}"))
                if rest:
                    parts.append(RichText("\n".join(f"     {line}" for line in rest if not line.startswith("```")),
                                          style="green"))
        elif isinstance(block, Code):
            parts.append(RichText(block.text, style="green"))
        elif isinstance(block, Hits):
            for i, hit in enumerate(block.hits, 1):
                line = RichText(f"{i}. ")
                line.append(hit.title, style=f"bold link {hit.url}" if hit.url else "bold")
                line.append(f"  {hit.where}", style="dim")
                parts.append(line)
                snippet = RichText("   ")
                for t, marked in hit.runs:
                    snippet.append(t, style="bold yellow" if marked else "")
                parts.append(snippet)
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
