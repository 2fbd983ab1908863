"""``callboard create``'s prompts: the template's pages asked at a terminal (scripted here, no TTY)
with the same validation as Slack's modal, and completion for pickers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from callboard.bot.shell.forms import FormAborted, PickerCompleter, Question, ask_values, catalog_complete
from callboard.bot.shell.render import render_form_text
from callboard.commands.forms import Choice, Field, FieldType, Form, FormPage
from callboard.scaffolder.model import TemplateDef, template_from_document
from callboard.scaffolder.pickers import CatalogPickers

from .test_slack_template_forms import _catalog

SINK = Path(__file__).resolve().parents[1] / "scaffolder" / "kitchen_sink.yaml"


def _sink() -> TemplateDef:
    return template_from_document(yaml.safe_load(SINK.read_text()))


class Script:
    """Answers by field name, in order; records every question."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = {k: iter(v) for k, v in answers.items()}
        self.asked: list[Question] = []

    def __call__(self, question: Question) -> str:
        self.asked.append(question)
        it: Iterator[str] = self.answers.get(question.field.name, iter(()))
        return next(it, "")

    def names(self) -> list[str]:
        return [q.field.name for q in self.asked]


def test_missing_fields_are_asked_page_by_page_with_the_same_rules() -> None:
    script = Script({
        "name": ["svc"],
        "owner": ["web-team"],
        "token": ["short", "deploy-token-1"],  # too short first: asked again with the reason
        "repoUrl": ["github.com?owner=evil&repo=x", "acme/svc"],
    })
    answers = ask_values(_sink(), {"replicas": 3, "language": None}, prompt=script)
    # language and pythonVersion have defaults, so nothing required is missing on page 2
    assert script.names() == ["name", "owner", "token", "token", "repoUrl", "repoUrl"]
    tokens = [q for q in script.asked if q.field.name == "token"]
    assert tokens[0].password and tokens[1].message.startswith("[x] Enter at least 8 characters\n")
    repo = [q for q in script.asked if q.field.name == "repoUrl"]
    assert repo[1].message.startswith("[x] Owner evil is not allowed here")
    assert answers.secrets == {"token": "deploy-token-1"}
    v = answers.values
    assert v["token"] == "*" * 14 and v["owner"] == "group:default/web-team" and v["repoUrl"] == "github.com?owner=acme&repo=svc"
    assert v["language"] == "python"  # a default applies before asking: language was never missing
    assert v["replicas"] == 3 and v["database"] == {"engine": "postgres", "size": 10}


def test_conditional_fields_appear_as_they_are_turned_on() -> None:
    script = Script({"public": ["yes"], "domain": ["ops@acme.example"], "pythonVersion": ["3.11"]})
    answers = ask_values(_sink(), {"name": "svc", "owner": "group:default/a", "language": "python",
                                   "repoUrl": "github.com?owner=acme&repo=svc"},
                         secrets={"token": "deploy-token-1"}, prompt=script, ask_optional=True)
    assert "domain" in script.names() and script.names().index("domain") > script.names().index("public")
    assert answers.values["domain"] == "ops@acme.example" and answers.values["pythonVersion"] == "3.11"
    assert "token" not in script.names() and answers.secrets == {"token": "deploy-token-1"}


def test_a_field_answered_wrongly_again_and_again_aborts_naming_it() -> None:
    script = Script({"name": ["-bad-"] * 10})
    with pytest.raises(FormAborted) as aborted:
        ask_values(_sink(), {}, prompt=script)
    assert aborted.value.errors[0].field == "name" and "letter or digit" in aborted.value.errors[0].message
    assert script.names() == ["name"] * 5


def test_choices_complete_and_values_show_their_prompt() -> None:
    field = Field(name="lang", label="Language", type=FieldType.CHOICE,
                  choices=(Choice(value="python", label="Python"), Choice(value="go", label="Go")))
    got = list(PickerCompleter(field, None).get_completions(Document("py"), CompleteEvent()))
    assert [c.text for c in got] == ["python"]


async def test_pickers_complete_from_the_catalog_the_persons_teams_first(tmp_path: Path) -> None:
    from callboard.bot.app import Callboard
    from callboard.bot.config import Settings
    from callboard.commands.dispatch import CommandRegistry

    app = await Callboard.open(Settings(database_url=f"sqlite:///{tmp_path / 'cb.db'}",
                                        data_dir=str(tmp_path / "data")), CommandRegistry.from_entry_points())
    try:
        assert not (await app.sync((str(_catalog(tmp_path / "catalog")),))).errors
        teams = await CatalogPickers(app.catalog).teams("user:default/asker")
        assert teams == [("group:default/web-team", "Web")]
        complete = catalog_complete(app.catalog, teams)
        owner = Field(name="owner", label="Owner", type=FieldType.ENTITY, kinds=("Group",))
        assert [c.value for c in complete(owner, "")] == ["group:default/web-team"]
        suggested = [c.value for c in complete(owner, "payments")]
        assert suggested[0] == "group:default/payments-team" and "group:default/web-team" not in suggested
        assert all(v.startswith("group:") for v in suggested)
        completions = list(PickerCompleter(owner, complete).get_completions(Document("web"), CompleteEvent()))
        assert completions[0].text == "group:default/web-team" and "your team" in str(completions[0].display)
    finally:
        await app.close()


def test_the_review_page_in_text() -> None:
    form = Form(id="t", title="T", pages=(FormPage(title="Review", fields=(), review=(("Token", "******"),
                                                                                        ("Name", "svc\x1b[31m"))),))
    text = render_form_text(form)
    assert "Token: ******" in text and "Name: svc" in text and "\x1b" not in text
