"""The golden path in Teams, over HTTP: a new hire asks Callboard to create, opens the template's
dialog (``task/fetch``), submits a mistake (the error under its field), corrects it, confirms the
review (``task/submit``); the run publishes a real git repository and registers the entity; its
progress and the final card with the output links arrive in the conversation as proactive messages;
``owner`` answers for the new service at once. Real server and SDK, the Bot Connector fake."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

from callboard.bot.teams.protocol import DATA_FORM, DATA_FORM_KEY, DATASET_FORM

from ..test_golden_path import _catalog
from .rig import serving
from .test_teams_surface import _actions, _walk


def _dialog_card(answer: dict[str, Any]) -> dict[str, Any]:
    task = answer["task"]
    assert task["type"] == "continue", answer
    card: dict[str, Any] = task["value"]["card"]["content"]
    return card


def _form_key(card: dict[str, Any]) -> str:
    (submit,) = _actions(card, "Action.Submit")
    key: str = submit["data"][DATA_FORM_KEY]
    return key


def _inputs(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["id"]: n for n in _walk(card) if str(n.get("type", "")).startswith("Input.")}


async def test_create_in_a_teams_dialog_to_owner_answering(tmp_path: Path) -> None:
    async with serving(tmp_path, catalog=_catalog(tmp_path / "catalog")) as rig:
        await rig.message("create tiny")
        listed = (await rig.posted())[0]["attachments"][0]["content"]
        (opener,) = [a for a in _actions(listed, "Action.Submit") if "tiny-service" in json.dumps(a["data"])]
        assert opener["data"]["msteams"] == {"type": "task/fetch"} and opener["data"][DATA_FORM]

        # the dialog opens on the form's first page
        opened = await rig.invoke("task/fetch", {"type": "task/fetch", "data": opener["data"], "context": {"theme": "dark"}})
        assert opened["task"]["value"]["title"] == "Tiny service"
        page = _dialog_card(opened)
        inputs = _inputs(page)
        assert set(inputs) == {"name", "owner"}
        owner_picker = inputs["owner"]
        assert owner_picker["type"] == "Input.ChoiceSet"
        dataset = owner_picker["choices.data"]["dataset"]
        assert dataset.startswith(DATASET_FORM)

        # the owner picker's typeahead: groups from the catalog
        found = await rig.invoke("application/search", {"queryText": "web", "dataset": dataset,
                                                        "queryOptions": {"skip": 0, "top": 15}})
        assert "group:default/web-team" in [r["value"] for r in found["value"]["results"]]

        # a bad name: the same page again, the error under the name field, what was typed kept
        key = _form_key(page)
        wrong = _dialog_card(await rig.invoke("task/submit", {"type": "task/submit", "data": {
            DATA_FORM_KEY: key, "name": "Bad Name!", "owner": "group:default/web-team"}}))
        assert set(_inputs(wrong)) == {"name", "owner"}
        text = json.dumps(wrong)
        assert "pattern" in text.lower() or "must match" in text.lower() or "lower case" in text.lower(), text

        # corrected: the review page, then the run
        review = _dialog_card(await rig.invoke("task/submit", {"type": "task/submit", "data": {
            DATA_FORM_KEY: _form_key(wrong), "name": "ledger-lite", "owner": "group:default/web-team"}}))
        assert "ledger-lite" in json.dumps(review) and not _inputs(review)
        started = time.monotonic()
        status, closed, _ = await rig.post(rig.activity("invoke", name="task/submit", value={
            "type": "task/submit", "data": {DATA_FORM_KEY: _form_key(review)}}))
        assert status == 200 and closed is None  # the dialog closes

        # the run's progress and its final card, posted back to the conversation
        deadline = time.monotonic() + 30
        while "Tiny service: done" not in rig.card_text() and "failed" not in rig.card_text():
            assert time.monotonic() < deadline, rig.card_text()
            await asyncio.sleep(0.1)
        shown = rig.card_text()
        assert "Tiny service: done" in shown and "Publish" in shown, shown
        final = [c for c in rig.cards() if "Tiny service: done" in json.dumps(c)][-1]
        # the output's links: the entity in the catalog (a local repository has no web page to link)
        assert "info component:default/ledger-lite" in [a["data"]["cmd"] for a in _actions(final, "Action.Execute")]
        assert not rig.connector.invalid

        # the repository exists, with the skeleton rendered
        (repo,) = list((tmp_path / "data").rglob("ledger-lite"))[:1]
        assert (repo / "README.md").read_text() == "# ledger-lite\n\nOwned by group:default/web-team.\n"
        log = subprocess.run(["git", "-C", str(repo), "log", "--oneline"], capture_output=True, text=True, check=True)
        assert log.stdout.strip()

        # owner answers for the new service at once
        await rig.message("who owns ledger-lite?")
        await rig.settled()
        for _ in range(50):
            if "web-team" in json.dumps(rig.cards()[-1]):
                break
            await asyncio.sleep(0.05)
        assert "web-team" in json.dumps(rig.cards()[-1]) and "ledger-lite" in json.dumps(rig.cards()[-1])
        assert time.monotonic() - started < 15


async def test_a_dialog_of_a_form_nobody_knows_says_so(tmp_path: Path) -> None:
    async with serving(tmp_path) as rig:
        answer = await rig.invoke("task/fetch", {"data": {"msteams": {"type": "task/fetch"},
                                                          DATA_FORM: "template:default/no-such-template"}})
        assert answer["task"]["type"] == "message" and "no-such-template" in answer["task"]["value"]
        expired = await rig.invoke("task/submit", {"data": {DATA_FORM_KEY: "not-a-key", "name": "x"}})
        assert "expired" in json.dumps(expired)
        for value in ({}, {"data": "text"}, {"data": {DATA_FORM: 7}}):
            answer = await rig.invoke("task/fetch", value)
            assert answer["task"]["type"] == "message"
