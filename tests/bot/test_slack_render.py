"""The Block Kit renderer: Slack's limits hold whatever the reply holds."""

from __future__ import annotations

import json

from callboard.bot.slack.render import MAX_BLOCKS, PAGE_SIZE, render
from callboard.commands.api import Fields, Header, Item, ItemList, Notice, Reply, Status, Text


def _reply(n_items: int = 40, **data: object) -> Reply:
    items = tuple(Item(label=f"svc-{i:03d}", ref=f"component:default/svc-{i:03d}", detail="Component")
                  for i in range(n_items))
    return Reply(status=Status.OK, blocks=(Header(text="Group team-a owns 40 entities"),
                                           ItemList(title="Owns", items=items, total=n_items)),
                 summary="team-a owns 40 entities", data=dict(data))


def _buttons(blocks: list[dict]) -> dict[str, str]:
    return {e["action_id"]: e.get("value", "") for b in blocks if b["type"] == "actions" for e in b["elements"]}


def test_long_lists_page_with_next_and_previous() -> None:
    first = render(_reply(), command_text="owner team-a")
    text = json.dumps(first.blocks)
    assert "svc-000" in text and f"svc-{PAGE_SIZE:03d}" not in text
    assert f"and {40 - PAGE_SIZE} more" in text and "page 1 of 3" in text
    buttons = _buttons(first.blocks)
    assert "page:next" in buttons and "page:prev" not in buttons
    assert json.loads(buttons["page:next"]) == {"t": "owner team-a", "p": 2}
    last = render(_reply(), command_text="owner team-a", page=3)
    assert "svc-039" in json.dumps(last.blocks)
    assert set(_buttons(last.blocks)) == {"page:prev"}


def test_every_message_has_fallback_text_and_respects_limits() -> None:
    huge = Reply(
        status=Status.OK,
        blocks=(Header(text="x" * 500), Text(text="y" * 10_000), Fields(pairs=tuple((f"k{i}", "v" * 3000) for i in range(25))),
                *(Notice(level="info", text=f"note {i}") for i in range(80))),
        summary="z" * 5000,
    )
    msg = render(huge, command_text="info x")
    assert len(msg.blocks) <= MAX_BLOCKS
    assert 0 < len(msg.text) <= 3000
    header = msg.blocks[0]
    assert len(header["text"]["text"]) <= 150
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in msg.blocks)
    assert all(len(b.get("fields", [])) <= 10 for b in msg.blocks)


def test_text_is_escaped_for_slack() -> None:
    reply = Reply(status=Status.OK, blocks=(Text(text="<script>&<@U123>"),), summary="s")
    (section,) = render(reply).blocks
    assert section["text"]["text"] == "&lt;script&gt;&amp;&lt;@U123&gt;"


def test_entity_cards_offer_only_installed_commands_and_mentions() -> None:
    reply = _reply(3, entity="component:default/payment-service")
    msg = render(reply, command_text="info payment-service", commands={"owner", "deps", "info"},
                 mentions={"component:default/svc-001": "U0ALICE01"}, shareable=True)
    buttons = _buttons(msg.blocks)
    assert buttons["card:owner"] == "owner component:default/payment-service"
    assert "card:deps" in buttons and "card:oncall" not in buttons and "share" in buttons
    assert "<@U0ALICE01>" in json.dumps(msg.blocks)


def test_ambiguous_replies_carry_a_picker() -> None:
    reply = Reply(status=Status.AMBIGUOUS, blocks=(ItemList(title="which?", items=(Item(label="a"), Item(label="b"))),),
                  summary="ambiguous")
    blocks = render(reply, command_text="owner pay").blocks
    (picker,) = [b for b in blocks if b.get("block_id") == "pick:owner"]
    assert picker["elements"][0]["type"] == "external_select"
