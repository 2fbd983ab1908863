"""Software Template forms as Slack modals, over HTTP through Callboard's real server against the
Slack fake: a real reference template (Backstage's demo template) and the kitchen-sink template of
``tests/scaffolder`` (every field type), page by page — errors on their fields, pages grown by
conditionals, pickers answered from the catalog (the person's teams first), the review, the run."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from callboard.bot.slack.render import render
from callboard.bot.surface import View
from callboard.commands.api import Actions, OpenForm, Reply, Status
from callboard.commands.forms import FormSubmission, Choice
from callboard.commands.template_forms import REVIEW_TITLE, TemplateForms
from callboard.scaffolder.forms import FieldSpec
from callboard.scaffolder.model import TemplateDef, template_from_document
from callboard.scaffolder.pickers import CatalogPickers

from ..conftest import REFERENCE
from ..fakes.slack import SlackFake
from .test_slack_real_shapes import ASKER, Rig, fake, serving  # noqa: F401  (fake: a fixture)

SINK = Path(__file__).resolve().parents[1] / "scaffolder" / "kitchen_sink.yaml"
DEMO = REFERENCE / "templates" / "backstage-demo" / "demo-template" / "template" / "template.yaml"


def _catalog(root: Path) -> Path:
    """A small org: the asker is in web-team; payments-team and a shop system exist; web-team owns web-app."""
    root.mkdir(parents=True, exist_ok=True)
    docs = [
        {"kind": "Group", "metadata": {"name": "web-team", "title": "Web"}, "spec": {"type": "team", "children": []}},
        {"kind": "Group", "metadata": {"name": "payments-team"}, "spec": {"type": "team", "children": []}},
        {"kind": "Group", "metadata": {"name": "payments-guild"}, "spec": {"type": "guild", "children": []}},
        {"kind": "User", "metadata": {"name": "asker"},
         "spec": {"profile": {"email": "asker@example.com"}, "memberOf": ["web-team"]}},
        {"kind": "System", "metadata": {"name": "shop"}, "spec": {"owner": "web-team"}},
        {"kind": "Component", "metadata": {"name": "web-app", "tags": ["python", "web"]},
         "spec": {"type": "website", "lifecycle": "production", "owner": "web-team"}},
        {"kind": "Component", "metadata": {"name": "payments-api"},
         "spec": {"type": "service", "lifecycle": "production", "owner": "payments-team"}},
    ]
    (root / "catalog-info.yaml").write_text("\n---\n".join(
        json.dumps({"apiVersion": "backstage.io/v1alpha1", **d}) for d in docs) + "\n")
    return root / "catalog-info.yaml"


@dataclass
class Harness:
    """The template FormHandler as the app would wire it, its runner a recording stand-in (the
    TASKS helper's runner is not on this branch)."""

    templates: dict[str, TemplateDef]
    runs: list[tuple[str, dict[str, Any], dict[str, str], str | None]] = field(default_factory=list)
    pickers: CatalogPickers | None = None

    def handler(self) -> TemplateForms:
        async def find(ref: str) -> TemplateDef | None:
            return self.templates.get(ref)

        async def start(template: TemplateDef, values: Mapping[str, Any], secrets: Mapping[str, str],
                        submission: FormSubmission) -> Reply:
            self.runs.append((template.ref, dict(values), dict(secrets), submission.user_ref))
            return Reply.notice(Status.OK, f"Creating {values.get('name')} with {template.title}.")

        async def options(spec: FieldSpec, query: str, user_ref: str | None) -> list[Choice]:
            assert self.pickers is not None
            return await self.pickers.options(spec, query, user_ref)

        def known(key: str) -> bool:
            return self.pickers is not None and self.pickers.known(key)

        return TemplateForms(templates=find, start=start, options=options, known=known)


def _load(path: Path) -> TemplateDef:
    return template_from_document(yaml.safe_load(path.read_text()), base_dir=path.parent)


async def _open(rig: Rig, fake: SlackFake, ref: str, name: str = "form") -> dict[str, Any]:
    reply = Reply(status=Status.OK, summary="s", blocks=(Actions(actions=(OpenForm(label="Create", form=ref),)),))
    button = next(e for b in render(reply, View(asked="x")).blocks if b["type"] == "actions" for e in b["elements"])
    await rig.click(button["value"], action_id=button["action_id"], name=name)
    opened = await fake.wait_for("views.open")
    assert opened[-1].response is not None and opened[-1].response["ok"] is True, opened[-1].response
    view: dict[str, Any] = opened[-1].params["view"]
    return view


async def _submit(rig: Rig, view: Mapping[str, Any], values: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """A view_submission as Slack sends it: the modal as shown, with its blocks' state."""
    state = {name: {next(b["element"]["action_id"] for b in view["blocks"] if b.get("block_id") == name): value}
             for name, value in values.items()}
    status, text = await rig.interactive({
        "type": "view_submission", "team": {"id": "T0FAKE001"}, "user": {"id": ASKER}, "trigger_id": "1.2.4",
        "view": {**view, "state": {"values": state}}})
    assert status == 200, text
    answer: dict[str, Any] = json.loads(text)
    return answer


async def _suggest(rig: Rig, view: Mapping[str, Any], block: str, query: str) -> list[str]:
    element = next(b["element"] for b in view["blocks"] if b.get("block_id") == block)
    status, text = await rig.interactive({
        "type": "block_suggestion", "user": {"id": ASKER}, "team": {"id": "T0FAKE001"},
        "action_id": element["action_id"], "block_id": block, "value": query, "view": view})
    assert status == 200, text
    return [o["value"] for o in json.loads(text)["options"]]


def _inputs(view: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}


def _text(value: str | None) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


@pytest.mark.reference
async def test_backstages_demo_template_as_a_modal(fake: SlackFake, tmp_path: Path) -> None:
    demo = _load(DEMO)
    harness = Harness({demo.ref: demo})
    async with serving(fake, tmp_path, catalog=_catalog(tmp_path / "catalog"), forms=harness.handler()) as rig:
        harness.pickers = CatalogPickers(rig.app.catalog)
        page1 = await _open(rig, fake, demo.ref)
        assert page1["title"]["text"] == "Demo Template" and len(page1["title"]["text"]) <= 24
        inputs = _inputs(page1)
        assert list(inputs) == ["name", "mode", "topics"]
        assert inputs["name"]["type"] == "plain_text_input" and inputs["name"].get("focus_on_load") is True
        assert inputs["mode"]["type"] == "static_select"
        assert [o["text"]["text"] for o in inputs["mode"]["options"]] == ["Light", "Dark"]
        assert inputs["topics"]["type"] == "multi_static_select" and len(inputs["topics"]["options"]) == 6

        # the required name missing: its error under its block, nothing else
        answer = await _submit(rig, page1, {"mode": {"type": "static_select", "selected_option": {"value": "dark"}},
                                            "topics": {"type": "multi_static_select",
                                                       "selected_options": [{"value": "builtin-actions"}]}})
        assert answer == {"response_action": "errors", "errors": {"name": "Required"}}

        answer = await _submit(rig, page1, {
            "name": _text("Ada Lovelace"), "mode": {"type": "static_select", "selected_option": {"value": "dark"}},
            "topics": {"type": "multi_static_select", "selected_options": [{"value": "writing-templates"},
                                                                         {"value": "builtin-actions"}]}})
        assert answer["response_action"] == "update", answer
        page2 = answer["view"]
        assert list(_inputs(page2)) == ["repoUrl"] and "Step 2 of 3" in json.dumps(page2["blocks"])

        # a host the template does not allow, then the right one
        answer = await _submit(rig, page2, {"repoUrl": _text("gitlab.com?owner=ada&repo=demo-landing")})
        assert answer["response_action"] == "errors"
        assert answer["errors"]["repoUrl"].startswith("Host gitlab.com is not allowed here (allowed: github.com)")
        answer = await _submit(rig, page2, {"repoUrl": _text("https://github.com/ada-lovelace/demo-landing")})
        review = answer["view"]
        assert answer["response_action"] == "update" and review["submit"]["text"] == "Create"
        shown = json.dumps(review["blocks"])
        assert REVIEW_TITLE in shown and "Ada Lovelace" in shown and "Writing Templates, Builtin Actions" in shown
        assert "github.com?owner=ada-lovelace&amp;repo=demo-landing" in shown
        assert harness.runs == []

        answer = await _submit(rig, review, {})
        assert answer == {"response_action": "clear"}
        (posted,) = await fake.wait_for("chat.postMessage")
        assert posted.params["channel"] == ASKER and "Creating Ada Lovelace with Demo Template." in posted.params["text"]
        ((ref, values, secrets, user_ref),) = harness.runs
        # exactly what Backstage's form submitted in the reference run
        expected = json.loads((REFERENCE / "expected" / "scaffolder" / "demo-template.without-user-token.json")
                              .read_text())["request"]["values"]
        assert (ref, values, secrets, user_ref) == (demo.ref, expected, {}, "user:default/asker")


async def test_every_field_type_through_slack(fake: SlackFake, tmp_path: Path) -> None:
    sink = _load(SINK)
    harness = Harness({sink.ref: sink})
    async with serving(fake, tmp_path, catalog=_catalog(tmp_path / "catalog"), forms=harness.handler()) as rig:
        harness.pickers = CatalogPickers(rig.app.catalog)
        page1 = await _open(rig, fake, sink.ref)
        assert len(page1["title"]["text"]) <= 24 and page1["title"]["text"].endswith("…")
        inputs = _inputs(page1)
        assert {k: e["type"] for k, e in inputs.items()} == {
            "name": "plain_text_input", "slug": "plain_text_input", "description": "plain_text_input",
            "owner": "external_select", "system": "external_select", "token": "plain_text_input",
            "password": "plain_text_input"}
        assert inputs["description"]["multiline"] is True and inputs["slug"]["max_length"] == 20

        # the owner picker: the asker's team first with nothing typed, then the catalog's fuzzy matches (groups only)
        assert await _suggest(rig, page1, "owner", "") == ["group:default/web-team"]
        offered = await _suggest(rig, page1, "owner", "paymnts")
        assert offered[0] == "group:default/payments-team" and all(v.startswith("group:") for v in offered)
        assert await _suggest(rig, page1, "system", "shop") == ["system:default/shop"]

        # a pattern, a too-short secret and a wrong kind: each under its field
        answer = await _submit(rig, page1, {
            "name": _text("svc"), "slug": _text("Bad Slug"), "token": _text("short"),
            "owner": {"type": "external_select", "selected_option": {"value": "user:default/asker"}}})
        assert answer["response_action"] == "errors"
        assert answer["errors"] == {"slug": "Must match the pattern ^[a-z][a-z0-9-]*$",
                                    "owner": "Must be a Group (this is a user)",
                                    "token": "Enter at least 8 characters"}
        page1_ok = {"name": _text("svc"), "slug": _text("svc"), "token": _text("deploy-token-1"),
                    "owner": {"type": "external_select", "selected_option": {"value": "group:default/web-team"}}}
        answer = await _submit(rig, page1, page1_ok)
        page2 = answer["view"]
        assert answer["response_action"] == "update" and "deploy-token-1" not in json.dumps(page2)
        inputs = _inputs(page2)
        assert inputs["replicas"]["type"] == "number_input" and inputs["replicas"]["initial_value"] == "2"
        assert inputs["ratio"]["is_decimal_allowed"] is True and inputs["public"]["type"] == "checkboxes"
        assert inputs["language"]["initial_option"]["value"] == "python" and "pythonVersion" in inputs
        assert inputs["database.engine"]["initial_option"]["value"] == "postgres"
        # OwnedEntityPicker: what the asker's team owns, nothing else
        assert await _suggest(rig, page2, "parent", "") == ["component:default/web-app"]

        # the tags picker: the catalog's tags as one types, and what was typed as a new tag
        assert inputs["tags"]["type"] == "multi_external_select"
        assert await _suggest(rig, page2, "tags", "pyt") == ["python", "pyt"]
        assert await _suggest(rig, page2, "tags", "python") == ["python"]
        assert await _suggest(rig, page2, "tags", "Not A Tag!") == []

        # choosing go and public turns fields on: the same page, grown
        page2_values: dict[str, dict[str, Any]] = {"replicas": {"type": "number_input", "value": "3"},
                        "language": {"type": "static_select", "selected_option": {"value": "go"}},
                        "public": {"type": "checkboxes", "selected_options": [{"value": "true"}]},
                        "tags": {"type": "multi_external_select",
                                 "selected_options": [{"value": "web"}, {"value": "python"}]}}
        answer = await _submit(rig, page2, page2_values)
        assert answer["response_action"] == "update"
        grown = answer["view"]
        assert {"goModule", "domain"} <= set(_inputs(grown)) and "pythonVersion" not in _inputs(grown)
        answer = await _submit(rig, grown, {**page2_values, "goModule": _text("acme/svc"),
                                            "domain": _text("web@acme.example")})
        page3 = answer["view"]
        assert list(_inputs(page3)) == ["repoUrl"]
        answer = await _submit(rig, page3, {"repoUrl": _text("github.com?owner=evil&repo=svc")})
        assert answer["errors"]["repoUrl"].startswith("Owner evil is not allowed here")
        answer = await _submit(rig, page3, {"repoUrl": _text("acme/svc")})
        review = answer["view"]
        shown = json.dumps(review["blocks"])
        assert "deploy-token-1" not in shown and "******" in shown and "web, python" in shown
        answer = await _submit(rig, review, {})
        assert answer == {"response_action": "clear"}
        ((_, values, secrets, user_ref),) = harness.runs
        assert secrets == {"token": "deploy-token-1"} and values["token"] == "*" * 14
        assert values["tags"] == ["web", "python"] and values["goModule"] == "acme/svc" and values["public"] is True
        assert values["repoUrl"] == "github.com?owner=acme&repo=svc" and user_ref == "user:default/asker"


async def test_a_page_slack_cannot_show_in_one_view_says_so(fake: SlackFake, tmp_path: Path) -> None:
    big = template_from_document({
        "apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template",
        "metadata": {"name": "huge", "title": "Huge"},
        "spec": {"parameters": [{"title": "All of it", "properties": {
            f"f{i:03d}": {"type": "string"} for i in range(120)}}], "steps": []}})
    harness = Harness({big.ref: big})
    async with serving(fake, tmp_path, forms=harness.handler()) as rig:
        view = await _open(rig, fake, big.ref)
        assert "submit" not in view and view["close"]["text"] == "Close"
        text = json.dumps(view["blocks"])
        assert "has 120 fields, more than Slack shows in one dialog" in text and "callboard create" in text
