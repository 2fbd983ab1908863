"""The Block Kit renderer: Slack's limits hold whatever the reply holds."""

from __future__ import annotations

import json
import re

from callboard.bot.slack.render import MAX_BLOCKS, PAGE_SIZE, render
from callboard.bot.surface import View
from callboard.commands.api import (
    Actions,
    Fields,
    Header,
    Item,
    ItemList,
    Links,
    Notice,
    OpenUrl,
    Person,
    Reply,
    RunCommand,
    Status,
    Text,
)
from callboard.commands.paging import paginate


def _reply(n_items: int = 40) -> Reply:
    items = tuple(Item(label=f"svc-{i:03d}", ref=f"component:default/svc-{i:03d}", detail="Component")
                  for i in range(n_items))
    return Reply(status=Status.OK, blocks=(Header(text="Group team-a owns 40 entities"),
                                           ItemList(title="Owns", items=items, total=n_items)),
                 summary="team-a owns 40 entities", command="owner", subject="group:default/team-a")


def _buttons(blocks: list[dict]) -> dict[str, str]:
    return {e["action_id"]: e.get("value", "") for b in blocks if b["type"] == "actions" for e in b["elements"]}


def test_long_lists_page_with_next_and_previous_carrying_only_a_key() -> None:
    view = View(asked="owner team-a " + "x" * 3000, page_key="k3y_-AB")
    first = render(paginate(_reply(), 1, PAGE_SIZE).reply, view)
    text = json.dumps(first.blocks)
    assert "svc-000" in text and f"svc-{PAGE_SIZE:03d}" not in text
    assert f"and {40 - PAGE_SIZE} more" in text and "page 1 of 3" in text
    buttons = _buttons(first.blocks)
    assert buttons == {"page:next": "k3y_-AB:2"}  # the question stays server-side, whatever its length
    last = render(paginate(_reply(), 3, PAGE_SIZE).reply, view)
    assert "svc-039" in json.dumps(last.blocks)
    assert _buttons(last.blocks) == {"page:prev": "k3y_-AB:2"}


def test_no_page_buttons_without_a_kept_question() -> None:
    msg = render(paginate(_reply(), 1, PAGE_SIZE).reply, View(asked="owner team-a"))
    assert not [a for a in _buttons(msg.blocks) if a.startswith("page:")]


def test_every_message_has_fallback_text_and_respects_limits() -> None:
    huge = Reply(
        status=Status.OK,
        blocks=(Header(text="x" * 500), Text(text="y" * 10_000), Fields(pairs=tuple((f"k{i}", "v" * 3000) for i in range(25))),
                *(Notice(level="info", text=f"note {i}") for i in range(80))),
        summary="z" * 5000,
    )
    msg = render(huge, View(asked="info x"))
    assert len(msg.blocks) <= MAX_BLOCKS
    assert 0 < len(msg.text) <= 3000
    header = msg.blocks[0]
    assert len(header["text"]["text"]) <= 150
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in msg.blocks)
    assert all(len(b.get("fields", [])) <= 10 for b in msg.blocks)


def test_text_and_the_fallback_are_escaped_for_slack() -> None:
    reply = Reply(status=Status.OK, blocks=(Text(text="<script>&<@U123>"),), summary="<!here> & <@U123>")
    msg = render(reply)
    (section,) = msg.blocks
    assert section["text"]["text"] == "&lt;script&gt;&amp;&lt;@U123&gt;"
    assert msg.text == "&lt;!here&gt; &amp; &lt;@U123&gt;"


def test_cuts_are_made_before_escaping_never_inside_an_entity_or_a_link() -> None:
    for n in range(2990, 3010):
        msg = render(Reply(status=Status.OK, blocks=(Text(text="a" * (n % 7) + "<&>" * n),), summary="<&>" * n))
        for text in (msg.text, msg.blocks[0]["text"]["text"]):
            assert len(text) <= 3000
            assert re.fullmatch(r"a*(?:&lt;|&amp;|&gt;)*…", text), text[-20:]
    links = tuple((f"<label {i}> " * 30, f"https://example.com/{i}") for i in range(80))
    msg = render(Reply(status=Status.OK, blocks=(Links(links=links),), summary="links"))
    for block in msg.blocks:
        rest = re.sub(r"<https://example\.com/\d+\|[^<>]*>", "", block["text"]["text"])
        assert "<" not in rest and ">" not in rest


def test_entity_actions_become_buttons_and_people_mentions() -> None:
    reply = Reply(status=Status.OK, command="owner", subject="group:default/team-a", summary="s", blocks=(
        ItemList(title="Members", items=(
            Item(label="alice", ref="user:default/alice", person=Person(ref="user:default/alice", name="alice")),
            Item(label="bob", ref="user:default/bob", person=Person(ref="user:default/bob", name="bob")))),
        Actions(actions=(RunCommand(label="Dependencies", command="deps group:default/team-a"),
                         OpenUrl(label="Site", url="https://example.com/x"),
                         OpenUrl(label="Bad", url="javascript:alert(1)")))))
    msg = render(reply, View(asked="owner team-a", mentions={"user:default/alice": "U0ALICE01",
                                                              "user:default/bob": "not-an-id>"}), shareable=True)
    buttons = _buttons(msg.blocks)
    assert buttons["run:0"] == "deps group:default/team-a" and buttons["share"] == "owner team-a"
    urls = [e.get("url") for b in msg.blocks if b["type"] == "actions" for e in b["elements"] if "url" in e]
    assert urls == ["https://example.com/x"]
    blob = json.dumps(msg.blocks)
    assert "<@U0ALICE01>" in blob and "not-an-id" not in blob and "bob" in blob


def test_share_only_on_answers() -> None:
    for status in (Status.NOT_FOUND, Status.USAGE, Status.ERROR, Status.AMBIGUOUS):
        msg = render(Reply.notice(status, "no"), View(asked="owner x"), shareable=True)
        assert "share" not in _buttons(msg.blocks)
    assert "share" in _buttons(render(Reply.notice(Status.OK, "yes"), View(asked="owner x"), shareable=True).blocks)
    assert "share" not in _buttons(render(Reply.notice(Status.OK, "yes"), View(asked="owner x")).blocks)


def test_ambiguous_replies_carry_a_picker_for_the_command_that_ran() -> None:
    reply = Reply(status=Status.AMBIGUOUS, command="owner",
                  blocks=(ItemList(title="which?", items=(Item(label="a"), Item(label="b"))),), summary="ambiguous")
    blocks = render(reply, View(asked="who owns pay?")).blocks
    (picker,) = [b for b in blocks if b.get("block_id", "").startswith("pick:")]
    assert picker["block_id"] == "pick:owner"
    assert picker["elements"][0]["type"] == "external_select"
