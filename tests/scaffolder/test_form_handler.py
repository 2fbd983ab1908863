"""The template FormHandler: open, page by page with errors, pages that grow, review, confirm -> start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from callboard.commands.api import Reply, Status, Unanswered
from callboard.commands.forms import Choice, FieldOptions, Form, FormHandler, FormSubmission
from callboard.commands.template_forms import REVIEW_TITLE, SECRET_TTL_S, TemplateForms
from callboard.scaffolder.forms import FieldSpec
from callboard.scaffolder.model import TemplateDef, template_from_document

HERE = Path(__file__).parent
USER = "U1"
ME = "user:default/ana"


@dataclass
class Started:
    """A recording stand-in for the TASKS helper's runner (the real one is not part of this branch)."""

    runs: list[tuple[str, dict[str, Any], dict[str, str], str | None]] = field(default_factory=list)

    async def __call__(self, template: TemplateDef, values: Mapping[str, Any], secrets: Mapping[str, str],
                       submission: FormSubmission) -> Reply:
        self.runs.append((template.ref, dict(values), dict(secrets), submission.user_ref))
        return Reply.notice(Status.OK, f"Started {template.name}")


def _sink() -> TemplateDef:
    return template_from_document(yaml.safe_load((HERE / "kitchen_sink.yaml").read_text()))


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def _handler(started: Started, *, may_run: Any = None, clock: Clock | None = None) -> TemplateForms:
    sink = _sink()

    async def find(ref: str) -> TemplateDef | None:
        return sink if ref == sink.ref else None

    async def options(spec: FieldSpec, query: str, user_ref: str | None) -> list[Choice]:
        return [Choice(value=f"group:default/{query}", label=f"{spec.name}:{user_ref}")]

    kwargs: dict[str, Any] = {"may_run": may_run} if may_run else {}
    return TemplateForms(templates=find, start=started, options=options, clock=clock or Clock(), **kwargs)


async def _submit(handler: TemplateForms, form: Form, values: dict[str, Any]) -> Any:
    """As the conversation does: the form re-opened from its kept state, then the page submitted."""
    reopened = await handler.open(form.id, form.values, ME)
    reopened = replace(reopened, page=form.page, values=form.values)
    return await handler.submit(reopened, FormSubmission(form=form.id, page=form.page, values=values, user=USER,
                                                         user_ref=ME))


PAGE1 = {"name": "svc", "owner": "group:default/payments-team", "token": "s3cret-token-1", "password": "hunter22"}


async def test_the_whole_form_page_by_page() -> None:
    started = Started()
    handler = _handler(started)
    assert isinstance(handler, FieldOptions)
    proto: FormHandler = handler
    form = await proto.open("template:default/kitchen-sink", {}, ME)
    assert form.page == 0 and [p.title for p in form.pages] == ["Basics", "Settings", "Repository", REVIEW_TITLE]
    assert form.values["replicas"] == 2  # defaults in from the start

    # page 1: a required field missing, a secret too short
    step = await _submit(handler, form, {**PAGE1, "name": None, "token": "short"})
    assert isinstance(step, Form) and step.page == 0
    assert {e.field: e.message for e in step.errors} == {"name": "Required", "token": "Enter at least 8 characters"}
    # a secret that failed its rule is not kept: left empty next time, it is still missing
    again = await _submit(handler, step, {**PAGE1, "token": None})
    assert isinstance(again, Form) and {e.field: e.message for e in again.errors} == {"token": "Required"}
    step = await _submit(handler, form, PAGE1)
    assert isinstance(step, Form) and step.page == 1 and not step.errors
    assert step.values["token"] == "*" * len("s3cret-token-1")  # the secret never enters the kept values
    assert "s3cret" not in repr(step.values)

    # page 2: choosing "public" turns on a required field: the page again, grown, without errors
    page2 = {"replicas": "3", "language": "go", "public": True, "extras": ["ci"], "aliases": "a, b"}
    step = await _submit(handler, step, page2)
    assert isinstance(step, Form) and step.page == 1 and not step.errors
    names = [f.name for f in step.current.fields]
    assert "domain" in names and "goModule" in names and "pythonVersion" not in names
    step = await _submit(handler, step, {**page2, "domain": "ops@acme.example", "goModule": "acme/svc"})
    assert isinstance(step, Form) and step.page == 2, step.errors

    # page 3: the repository, then the review
    step = await _submit(handler, step, {"repoUrl": "acme/svc"})
    assert isinstance(step, Form) and step.current.title == REVIEW_TITLE and step.last_page
    review = dict(step.current.review)
    assert review["Deploy token"] == "******" and review["Admin password"] == "******"
    assert review["Repository"] == "github.com?owner=acme&repo=svc" and review["Language"] == "Go"
    assert started.runs == []

    # confirming the review starts the run with the secret apart
    answer = await _submit(handler, step, {})
    assert isinstance(answer, Reply) and answer.summary == "Started kitchen-sink"
    ((ref, values, secrets, user_ref),) = started.runs
    assert ref == "template:default/kitchen-sink" and user_ref == ME
    assert secrets == {"token": "s3cret-token-1"}
    assert values["token"] == "**************" and "__callboard_secrets__" not in values
    assert values["replicas"] == 3 and values["aliases"] == ["a", "b"] and values["database"] == {
        "engine": "postgres", "size": 10}
    assert "pythonVersion" not in values  # turned off by choosing go


async def test_unknown_and_forbidden_templates_are_unanswered() -> None:
    handler = _handler(Started())
    with pytest.raises(Unanswered, match="no template"):
        await handler.open("template:default/nope", {}, ME)
    denied = _handler(Started(), may_run=lambda user, t: user != ME)
    with pytest.raises(Unanswered, match="may not run"):
        await denied.open("template:default/kitchen-sink", {}, ME)


async def test_permission_is_checked_again_on_submit() -> None:
    allowed = {"yes": True}

    async def may_run(user: str | None, template: TemplateDef) -> bool:
        return allowed["yes"]

    started = Started()
    handler = _handler(started, may_run=may_run)
    form = await handler.open("template:default/kitchen-sink", {}, ME)
    allowed["yes"] = False
    answer = await handler.submit(replace(form, page=3), FormSubmission(form=form.id, page=3, values={}, user=USER,
                                                                        user_ref=ME))
    assert isinstance(answer, Reply) and "may not run" in answer.summary and started.runs == []


async def test_a_template_with_a_field_callboard_cannot_show() -> None:
    doc = yaml.safe_load((HERE / "kitchen_sink.yaml").read_text())
    doc["spec"]["parameters"][2]["properties"]["map"] = {"type": "string", "ui:field": "GeoPicker"}
    bad = template_from_document(doc)

    async def find(ref: str) -> TemplateDef | None:
        return bad

    handler = TemplateForms(templates=find, start=Started())
    with pytest.raises(Unanswered, match='field "map" uses ui:field "GeoPicker"'):
        await handler.open(bad.ref, {}, ME)


async def test_a_lost_secret_is_asked_for_again_not_run_without() -> None:
    started = Started()
    clock = Clock()
    handler = _handler(started, clock=clock)
    form = await handler.open("template:default/kitchen-sink", {}, ME)
    step = await _submit(handler, form, PAGE1)
    step = await _submit(handler, step, {"replicas": "3", "language": "python"})
    step = await _submit(handler, step, {"repoUrl": "github.com?owner=acme&repo=svc"})
    assert step.current.title == REVIEW_TITLE
    clock.now += SECRET_TTL_S + 1
    back = await _submit(handler, step, {})
    assert isinstance(back, Form) and back.page == 0 and [e.field for e in back.errors] == ["token"]
    assert started.runs == []
    # typing it again goes on; a re-shown page may leave the secret empty once given
    step = await _submit(handler, back, PAGE1)
    step = await _submit(handler, replace(step, page=0), {**PAGE1, "token": None})
    assert isinstance(step, Form) and step.page == 1 and not step.errors


async def test_someone_else_cannot_use_a_forms_secrets() -> None:
    started = Started()
    handler = _handler(started)
    form = await handler.open("template:default/kitchen-sink", {}, ME)
    step = await _submit(handler, form, PAGE1)
    step = await _submit(handler, step, {"replicas": "3", "language": "python"})
    step = await _submit(handler, step, {"repoUrl": "github.com?owner=acme&repo=svc"})
    other = await handler.submit(step, FormSubmission(form=step.id, page=step.page, values={}, user="U2",
                                                      user_ref="user:default/mallory"))
    assert isinstance(other, Form) and [e.field for e in other.errors] == ["token"] and started.runs == []


async def test_picker_options_come_through_the_handler() -> None:
    handler = _handler(Started())
    form = await handler.open("template:default/kitchen-sink", {}, ME)
    assert await handler.options(form, "owner", "pay", ME) == [Choice(value="group:default/pay", label="owner:" + ME)]
    assert await handler.options(form, "name", "pay", ME) == []  # not a picker
