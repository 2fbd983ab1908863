"""Callboard in Microsoft Teams over HTTP: activities POSTed to the real server's /api/messages (the
Bot Framework SDK's CloudAdapter inside), answers asserted where Teams would see them — what the bot
posted to the Bot Connector fake, and what it returned to invokes."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from callboard.bot.teams.app import teams_text
from callboard.bot.teams.protocol import (DATA_COMMAND, DATA_PAGE, DATA_PAGE_KEY, DATA_PICK_COMMAND,
                                          DATASET_PICK, PICK_INPUT, VERB_PAGE, VERB_PICK, VERB_RUN)

from ...fakes.botconnector import BotConnectorFake
from .rig import BOT, PRIYA, STRANGER, Rig, serving, walk as _walk

CHANNEL = "19:general@thread.tacv2"


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with serving(tmp_path) as r:
        yield r


def _actions(card: dict[str, Any], type: str | None = None) -> list[dict[str, Any]]:
    return [n for n in _walk(card) if str(n.get("type", "")).startswith("Action.") and (type is None or n["type"] == type)]


def _execute(card: dict[str, Any], verb: str) -> list[dict[str, Any]]:
    return [a for a in _actions(card, "Action.Execute") if a.get("verb") == verb]



# --- conversations ------------------------------------------------------------------------------


async def test_a_question_in_a_personal_chat_is_answered_with_a_card(rig: Rig) -> None:
    asked = await rig.message("who owns payment-service?")
    (posted,) = await rig.posted()
    (attachment,) = posted["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert "payments-team" in json.dumps(attachment["content"])
    assert posted["summary"] and "payments-team" in posted["summary"]  # the text fallback
    assert posted["replyToId"] == asked["id"]
    assert not rig.connector.invalid


async def test_the_mention_is_removed_wherever_it_is_in_a_channel_and_the_answer_goes_in_the_thread(rig: Rig) -> None:
    thread = f"{CHANNEL};messageid=1700000000000001"
    asked = await rig.message("hey <at>Callboard</at>, who's on call for payment-service right now?",
                              conversation=thread, conversation_type="channel", mentions=((BOT, "Callboard"),))
    (posted,) = await rig.posted(thread)
    assert "On call for payment-service" in json.dumps(posted) and posted["replyToId"] == asked["id"]
    assert rig.dispatched == ["who's on call for payment-service right now?"]  # greeting and mention gone
    (reply,) = rig.connector.calls_to("reply")
    assert reply.conversation_id == thread and reply.activity_id == asked["id"]


async def test_group_chat_and_channel_messages_not_addressed_to_callboard_are_left_alone(rig: Rig) -> None:
    await rig.message("who owns payment-service?", conversation="19:chat@thread.v2", conversation_type="groupChat")
    await rig.message("<at>Priya Raman</at> who owns payment-service?", conversation=CHANNEL,
                      conversation_type="channel", mentions=((PRIYA["id"], "Priya Raman"),))
    await rig.settled()
    await asyncio.sleep(0.2)
    assert not rig.connector.posted() and not rig.dispatched


async def test_a_group_chat_mention_mid_sentence(rig: Rig) -> None:
    await rig.message("what does payment-service depend on, <at>Callboard</at>?", conversation="19:chat@thread.v2",
                      conversation_type="groupChat", mentions=((BOT, "Callboard"),))
    (posted,) = await rig.posted("19:chat@thread.v2")
    assert "payments-db" in json.dumps(posted), posted


def test_teams_text_drops_the_bots_mention_keeps_others_and_decodes_entities() -> None:
    mentions = [(BOT, "<at>Callboard</at>"), ("29:x", "<at>Priya Raman</at>")]
    assert teams_text("<at>Callboard</at> who owns payment-service?", mentions, BOT) == "who owns payment-service?"
    assert teams_text("Hi <at>Callboard</at>: runbook for checkout &amp; co", mentions, BOT) == "runbook for checkout & co"
    assert teams_text("is <at>Priya Raman</at> on call?", mentions, BOT) == "is @Priya Raman on call?"
    assert teams_text("<p>who owns <b>x</b></p>", [], BOT) == "who owns x"
    assert teams_text("a &lt;script&gt; b", [], BOT) == "a <script> b"


async def test_the_person_is_the_catalog_user_with_their_teams_email_and_times_are_in_their_zone(rig: Rig) -> None:
    await rig.message("mine", tz="Asia/Tokyo")
    (posted,) = await rig.posted()
    assert "payment-service" in json.dumps(posted), posted  # what Priya's team owns
    assert rig.connector.calls_to("member"), "the members API was asked who is writing"
    await rig.message("payment-service", tz="Asia/Tokyo")  # its card shows the on-call shifts
    posted = (await rig.posted(count=2))[-1]
    assert "JST" in json.dumps(posted), posted


async def test_someone_not_in_the_catalog_is_told_so_not_guessed(rig: Rig) -> None:
    await rig.message("mine", person=STRANGER, conversation="a:1stranger")
    (posted,) = await rig.posted("a:1stranger")
    assert "no catalog User" in json.dumps(posted), posted


async def test_the_bot_added_to_a_team_says_what_to_ask(rig: Rig) -> None:
    update = rig.activity("conversationUpdate", conversation=CHANNEL, conversation_type="channel",
                          membersAdded=[{"id": BOT, "name": "Callboard"}])
    status, _, _ = await rig.post(update)
    assert status == 200
    (posted,) = await rig.posted(CHANNEL)
    assert "owner" in json.dumps(posted)


async def test_people_in_an_answer_are_mentioned_when_teams_knows_them(rig: Rig) -> None:
    await rig.message("mine")  # Teams has now said who Priya is
    await rig.posted()
    await rig.message("team payments-team")
    card = (await rig.posted(count=2))[-1]["attachments"][0]["content"]
    entities = (card.get("msteams") or {}).get("entities") or []
    assert any(e["mentioned"]["id"] == PRIYA["id"] for e in entities), card


# --- card actions -------------------------------------------------------------------------------


async def test_a_card_button_runs_its_command_and_replaces_the_card(rig: Rig) -> None:
    await rig.message("owner payment-service")
    card = (await rig.posted())[0]["attachments"][0]["content"]
    (oncall,) = [a for a in _execute(card, VERB_RUN) if a["data"][DATA_COMMAND].startswith("oncall")]
    answer = await rig.invoke("adaptiveCard/action", {"action": {"type": "Action.Execute", "verb": VERB_RUN,
                                                                 "data": oncall["data"]}, "trigger": "manual"},
                              replyToId="1:posted-card")
    assert answer["statusCode"] == 200 and answer["type"] == "application/vnd.microsoft.card.adaptive"
    assert "On call for payment-service" in json.dumps(answer["value"])


def _team_owning(root: Path, count: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    docs = [{"kind": "Group", "metadata": {"name": "platform-team"}, "spec": {"type": "team", "children": []}}]
    docs += [{"kind": "Component", "metadata": {"name": f"ledger-{i:02d}"},
              "spec": {"type": "service", "lifecycle": "production", "owner": "platform-team"}} for i in range(count)]
    (root / "catalog-info.yaml").write_text("\n---\n".join(
        json.dumps({"apiVersion": "backstage.io/v1alpha1", **d}) for d in docs) + "\n")
    return root / "catalog-info.yaml"


async def test_a_slow_answer_says_it_is_working_then_updates_the_card_in_place(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    from callboard.bot.teams import app as teams_app

    monkeypatch.setattr(teams_app, "INVOKE_BUDGET_S", 0.0)  # every answer is "slow"
    rig.connector.add_activity("a:1personal-chat", "1:the-card")
    answer = await rig.invoke("adaptiveCard/action", {"action": {"type": "Action.Execute", "verb": VERB_RUN,
                                                                 "data": {DATA_COMMAND: "owner payment-service"}}},
                              replyToId="1:the-card")
    assert "Working on owner payment-service" in json.dumps(answer["value"])
    await rig.settled()
    (update,) = await rig.connector.wait_for("update")
    assert update.activity_id == "1:the-card" and "payments-team" in json.dumps(update.body)


async def test_next_and_previous_page_through_a_long_list(tmp_path: Path) -> None:
    async with serving(tmp_path, catalog=_team_owning(tmp_path / "catalog", 40)) as rig:
        await _pages(rig)


async def _pages(rig: Rig) -> None:
    await rig.message("team platform-team")
    card = (await rig.posted())[0]["attachments"][0]["content"]
    (nxt,) = _execute(card, VERB_PAGE)
    assert nxt["data"][DATA_PAGE] == 2 and nxt["data"][DATA_PAGE_KEY]
    page2 = await rig.invoke("adaptiveCard/action", {"action": {"type": "Action.Execute", "verb": VERB_PAGE,
                                                                "data": nxt["data"]}})
    assert "page 2 of 3" in json.dumps(page2["value"]) and "ledger-15" in json.dumps(page2["value"]), page2
    (prev,) = [a for a in _execute(page2["value"], VERB_PAGE) if a["data"][DATA_PAGE] == 1]
    page1 = await rig.invoke("adaptiveCard/action", {"action": {"type": "Action.Execute", "verb": VERB_PAGE,
                                                                "data": prev["data"]}})
    assert "ledger-00" in json.dumps(page1["value"]) and "ledger-15" not in json.dumps(page1["value"])
    expired = await rig.invoke("adaptiveCard/action", {"action": {"type": "Action.Execute", "verb": VERB_PAGE,
                                                                  "data": {DATA_PAGE_KEY: "nope", DATA_PAGE: 2}}})
    assert "expired" in json.dumps(expired["value"])


async def test_did_you_mean_offers_a_typeahead_picker_and_the_pick_answers(rig: Rig) -> None:
    await rig.message("owner payments")
    card = (await rig.posted())[0]["attachments"][0]["content"]
    (picker,) = [n for n in _walk(card) if n.get("type") == "Input.ChoiceSet" and n.get("id") == PICK_INPUT]
    dataset = picker["choices.data"]["dataset"]
    assert dataset.startswith(DATASET_PICK)
    found = await rig.invoke("application/search", {"queryText": "payment-serv", "dataset": dataset,
                                                    "queryOptions": {"skip": 0, "top": 15}})
    assert found["type"] == "application/vnd.microsoft.search.searchResponse"
    values = [r["value"] for r in found["value"]["results"]]
    assert "component:default/payment-service" in values
    (pick,) = _execute(card, VERB_PICK)
    answer = await rig.invoke("adaptiveCard/action", {"action": {"type": "Action.Execute", "verb": VERB_PICK, "data": {
        **pick["data"], PICK_INPUT: "component:default/payment-service"}}})
    assert "payments-team" in json.dumps(answer["value"])
    assert pick["data"][DATA_PICK_COMMAND] == "owner"


async def test_a_button_that_is_not_callboards_is_refused_politely(rig: Rig) -> None:
    for data in ({}, {DATA_COMMAND: ""}, {DATA_COMMAND: 7}):
        answer = await rig.invoke("adaptiveCard/action", {"action": {"type": "Action.Execute", "verb": VERB_RUN,
                                                                     "data": data}})
        assert answer["statusCode"] == 400 and "not one of Callboard's" in answer["value"]["message"]
    answer = await rig.invoke("adaptiveCard/action", {"action": {"type": "Action.Execute", "verb": "rm -rf"}})
    assert answer["statusCode"] == 400


# --- the message extension ----------------------------------------------------------------------


async def test_the_message_extension_finds_entities_and_inserts_their_cards(rig: Rig) -> None:
    answer = await rig.invoke("composeExtension/query", {"commandId": "searchEntity", "parameters": [
        {"name": "query", "value": "paymnt servce"}], "queryOptions": {"skip": 0, "count": 10}})
    result = answer["composeExtension"]
    assert result["type"] == "result" and result["attachments"]
    first = result["attachments"][0]
    assert first["contentType"] == "application/vnd.microsoft.card.adaptive" and first["preview"]["content"]["title"]
    assert "payment-service" in json.dumps(result["attachments"])
    empty = await rig.invoke("composeExtension/query", {"commandId": "searchEntity", "parameters": [
        {"name": "initialRun", "value": "true"}]})
    assert empty["composeExtension"]["attachments"] == []


async def test_a_docs_link_unfurls_into_the_entity_card(tmp_path: Path) -> None:
    async with serving(tmp_path, public_url="https://callboard.acme.example.com") as rig:
        answer = await rig.invoke("composeExtension/queryLink", {
            "url": "https://callboard.acme.example.com/docs/default/component/payment-service/runbook/"})
        (attachment,) = answer["composeExtension"]["attachments"]
        assert "payment-service" in json.dumps(attachment["content"]) and "payments-team" in json.dumps(attachment)
        for other in ("https://evil.example.com/docs/default/component/payment-service/",
                      "https://callboard.acme.example.com/docs/default/component/no-such-thing/",
                      "https://callboard.acme.example.com/elsewhere/default/component/payment-service/"):
            answer = await rig.invoke("composeExtension/queryLink", {"url": other})
            assert answer["composeExtension"]["attachments"] == [], other


# --- requests that are not what Teams sends -----------------------------------------------------


async def test_bodies_that_are_not_activities_are_refused(rig: Rig) -> None:
    url = rig.server.make_url("/api/messages")
    async with rig.http.post(url, data=b"not json", headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 400
    async with rig.http.post(url, data=b"{}", headers={"Content-Type": "text/plain"}) as resp:
        assert resp.status == 415
    body: Any
    for body in ([], {"text": "no type"}, {"type": "message"}, {"type": "message", "serviceUrl": "ftp://x"}):
        async with rig.http.post(url, json=body) as resp:
            assert resp.status == 400, body
    assert not rig.dispatched


async def test_development_mode_replies_only_to_a_connector_on_this_machine(rig: Rig,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    """Unauthenticated requests name their own serviceUrl: one elsewhere would aim the bot at it."""
    for service_url in ("https://smba.trafficmanager.net/amer/", "http://169.254.169.254/latest/",
                        "http://10.0.0.7:8080/"):
        status, _, _ = await rig.post(rig.activity("message", text="owner payment-service", serviceUrl=service_url))
        assert status == 401
    assert not rig.dispatched


async def test_a_failing_connector_costs_one_reply_not_the_bot(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    rig.connector.fail_next("reply", 502, body="<html><body>Bad Gateway</body></html>")
    await rig.message("owner payment-service")
    await rig.settled()
    assert any("teams" in r.getMessage() or "Bot Connector" in r.getMessage() for r in caplog.records
               if r.levelno >= logging.WARNING), caplog.text
    await rig.message("owner checkout-api")
    posted = await rig.posted()
    assert "checkout-team" in json.dumps(posted[-1])


async def test_a_connector_that_hangs_is_given_up_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from callboard.bot.teams import app as teams_app

    monkeypatch.setattr(teams_app, "CONNECTOR_LIMIT_S", 0.5)
    connector = BotConnectorFake()
    await connector.start()
    try:
        async with serving(tmp_path, connector=connector) as rig:
            connector.hang_next("reply", 30)
            await asyncio.wait_for(rig.message("owner payment-service"), 2)
            await asyncio.wait_for(rig.settled(), 5)
            await rig.message("owner checkout-api")
            posted = await rig.posted()
            assert "checkout-team" in json.dumps(posted[-1])
    finally:
        await connector.stop()


# --- the whole path, as a test of every card Teams was sent ---------------------------------------


@pytest.mark.reference
async def test_every_card_sent_validates_against_the_adaptive_card_schema(rig: Rig) -> None:
    from .test_cards import check  # the schema and safety check the renderer's own tests use

    for text in ("who owns payment-service?", "info payments-api", "find service", "owner payments", "oncall checkout-api",
                 "deps payment-service", "team payments-team", "help", "owner nothing-like-this-xyz", "create"):
        await rig.message(text)
    posted = await rig.posted(count=10)
    for activity in posted:
        for attachment in activity["attachments"]:
            check(attachment["content"])


async def test_a_form_shown_outside_a_click_is_a_card_whose_button_opens_the_dialog(rig: Rig) -> None:
    """Teams opens a dialog only from a click: ``open_form`` posts a card whose button does it."""
    asked = await rig.message("help")
    await rig.posted()
    where = rig.surface.direct(asked["from"]["id"])
    key, form = await rig.surface.conversation.open_form("template:default/python-service", {},
                                                         rig.surface._asked(_activity(asked), ""))
    await rig.surface.open_form(where, form, key)
    card = (await rig.posted(count=2))[-1]["attachments"][0]["content"]
    (button,) = _actions(card, "Action.Submit")
    assert button["data"]["msteams"] == {"type": "task/fetch"} and button["data"]["form"] == form.id
    opened = await rig.invoke("task/fetch", {"data": button["data"]})
    assert opened["task"]["type"] == "continue"


def _activity(raw: dict[str, Any]) -> Any:
    from botbuilder.schema import Activity

    return Activity().deserialize(raw)


def test_the_stored_conversation_reference_is_the_sdks_own() -> None:
    """Read off the activity directly, the reference is what the SDK's serializer would write."""
    from botbuilder.core import TurnContext
    from botbuilder.schema import Activity

    from callboard.bot.teams.app import _reference_json

    raw = {"type": "message", "id": "1:42", "serviceUrl": "https://smba.trafficmanager.net/emea/", "channelId": "msteams",
           "locale": "en-GB", "from": {"id": "29:1x", "name": "Priya", "aadObjectId": "00000000-0000-0000-0000-00000000a11c"},
           "recipient": {"id": "28:bot", "name": "Callboard", "role": "bot"},
           "conversation": {"id": "19:x@thread.tacv2;messageid=1", "conversationType": "channel", "tenantId": "t",
                            "isGroup": True, "name": "General"}}
    activity = Activity().deserialize(raw)
    assert _reference_json(activity) == TurnContext.get_conversation_reference(activity).serialize()
    sparse = Activity().deserialize({"type": "message", "serviceUrl": "http://127.0.0.1:1", "conversation": {"id": "a:1"}})
    assert _reference_json(sparse) == TurnContext.get_conversation_reference(sparse).serialize()
