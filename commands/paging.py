"""Paging, platform-neutral: a long answer cut to one page, with Previous/Next actions.

Pure: a reply and a page in, the page's reply out. What the Next button re-asks is kept
server-side by the conversation; the ``ShowPage`` action only says which page.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .api import Actions, Block, ItemList, Reply, ShowPage

__all__ = ["Paged", "paginate"]


@dataclass(frozen=True, slots=True)
class Paged:
    reply: Reply
    page: int  # the page shown (1-based, clamped to what exists)
    pages: int


def paginate(reply: Reply, page: int, size: int | None) -> Paged:
    """``reply`` with every list longer than ``size`` cut to page ``page``, and Previous/Next
    actions when there is more than one page. ``size`` None: no paging."""
    if size is None or size < 1:
        return Paged(reply, 1, 1)
    pages = max((-(-len(b.items) // size) for b in reply.blocks if isinstance(b, ItemList)), default=1)
    pages = max(pages, 1)
    if pages == 1:
        return Paged(reply, 1, 1)
    page = min(max(page, 1), pages)
    blocks: list[Block] = []
    for block in reply.blocks:
        if isinstance(block, ItemList) and len(block.items) > size:
            own = -(-len(block.items) // size)
            start = (min(page, own) - 1) * size
            total = block.total if block.total is not None else len(block.items)
            blocks.append(dataclasses.replace(block, items=block.items[start:start + size], total=total,
                                              offset=start, page=(min(page, own), own)))
        else:
            blocks.append(block)
    nav: list[ShowPage] = []
    if page > 1:
        nav.append(ShowPage(label="Previous", page=page - 1))
    if page < pages:
        nav.append(ShowPage(label="Next", page=page + 1))
    blocks.append(Actions(actions=tuple(nav)))
    return Paged(dataclasses.replace(reply, blocks=tuple(blocks)), page, pages)
