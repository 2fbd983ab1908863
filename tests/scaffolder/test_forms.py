"""Parameters pages as forms: every field type, defaults, conditionals, each validation rule, and
the reference templates as Backstage's form shows them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from callboard.commands.forms import Choice, FieldType
from callboard.scaffolder import forms
from callboard.scaffolder.model import TemplateDef, template_from_document
from callboard.scaffolder.pickers import matches_filter, rank

from ..conftest import REFERENCE

HERE = Path(__file__).parent


def _sink() -> TemplateDef:
    return template_from_document(yaml.safe_load((HERE / "kitchen_sink.yaml").read_text()))


def _template(*pages: dict[str, Any]) -> TemplateDef:
    return template_from_document({"apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template",
                                   "metadata": {"name": "t"}, "spec": {"parameters": list(pages), "steps": []}})


def _fields(template: TemplateDef, values: dict[str, Any], page: int = 0) -> dict[str, Any]:
    return {f.name: f for f in forms.form_pages(template, values)[page].fields}


def _errors(template: TemplateDef, values: dict[str, Any], page: int | None = None) -> dict[str, str]:
    return {e.field: e.message for e in forms.validate(template, values, page)}


def test_every_field_type_of_the_kitchen_sink() -> None:
    t = _sink()
    values = forms.apply_defaults(t, {})
    p1 = _fields(t, values, 0)
    assert {n: f.type for n, f in p1.items()} == {
        "name": FieldType.TEXT, "slug": FieldType.TEXT, "description": FieldType.MULTILINE, "owner": FieldType.ENTITY,
        "system": FieldType.ENTITY, "token": FieldType.PASSWORD, "password": FieldType.PASSWORD}
    assert p1["name"].autofocus and p1["name"].help == "lower-case, with dashes" and p1["name"].placeholder == "my-service"
    assert p1["slug"].pattern == "^[a-z][a-z0-9-]*$" and (p1["slug"].min_length, p1["slug"].max_length) == (3, 20)
    assert p1["owner"].kinds == ("Group",) and p1["system"].kinds == ("System",)
    assert [n for n, f in p1.items() if f.required] == ["name", "owner", "token"]
    p2 = _fields(t, values, 1)
    assert p2["replicas"].type is FieldType.INTEGER and (p2["replicas"].minimum, p2["replicas"].maximum) == (1, 9)
    assert p2["ratio"].type is FieldType.NUMBER and p2["public"].type is FieldType.BOOLEAN
    assert p2["language"].type is FieldType.CHOICE
    assert p2["language"].choices == (Choice(value="python", label="Python"), Choice(value="go", label="Go"))
    assert p2["extras"].type is FieldType.MULTI_CHOICE and p2["extras"].choices[1].label == "CI workflow"
    assert p2["aliases"].type is FieldType.STRINGS and p2["tags"].type is FieldType.STRINGS
    assert p2["parent"].type is FieldType.ENTITY and p2["parent"].kinds == ("Component",)
    assert p2["database.engine"].type is FieldType.CHOICE and p2["database.size"].default == 10
    p3 = _fields(t, values, 2)
    assert p3["repoUrl"].type is FieldType.REPO_URL and p3["repoUrl"].hosts == ("github.com",)


def test_defaults_are_applied_as_the_web_form_applies_them() -> None:
    """Top-level and nested defaults, and a dependency branch's default once its branch shows."""
    t = _sink()
    assert forms.apply_defaults(t, {}) == {
        "replicas": 2, "public": False, "language": "python", "pythonVersion": "3.12",
        "database": {"engine": "postgres", "size": 10}}
    # a value given wins; the other branch's default does not come
    assert forms.apply_defaults(t, {"language": "go", "replicas": 5, "database": {"size": 1}}) == {
        "replicas": 5, "public": False, "language": "go", "database": {"engine": "postgres", "size": 1}}


def test_conditional_fields_follow_the_values_so_far() -> None:
    t = _sink()
    python = _fields(t, forms.apply_defaults(t, {}), 1)
    assert "pythonVersion" in python and "goModule" not in python and "domain" not in python
    assert python["pythonVersion"].required
    go = _fields(t, forms.apply_defaults(t, {"language": "go"}), 1)
    assert "goModule" in go and "pythonVersion" not in go
    public = _fields(t, forms.apply_defaults(t, {"public": True}), 1)
    assert public["domain"].required
    # a required field of a branch that is not shown is not required
    errors = _errors(t, forms.apply_defaults(t, {"language": "go", "goModule": "x"}), 1)
    assert "pythonVersion" not in errors and "domain" not in errors
    assert _errors(t, forms.apply_defaults(t, {"public": True}), 1) == {"domain": "Required"}


def test_values_of_fields_turned_off_are_dropped() -> None:
    t = _sink()
    values = forms.apply_defaults(t, {"language": "go", "goModule": "m", "pythonVersion": "3.11"})
    assert forms.values_of_page(t.parameters[1], values).get("pythonVersion") is None
    assert forms.values_of_page(t.parameters[1], values)["goModule"] == "m"


def test_property_dependencies_make_fields_required() -> None:
    t = _template({"properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "dependencies": {"a": ["b"]}})
    assert _errors(t, {}) == {}
    assert _errors(t, {"a": "x"}) == {"b": "Required"}


def test_a_page_level_one_of_shows_the_branch_the_values_fit() -> None:
    t = _template({"properties": {"kind": {"type": "string", "enum": ["lib", "svc"]}},
                   "oneOf": [{"properties": {"kind": {"const": "lib"}, "registry": {"type": "string"}}},
                             {"properties": {"kind": {"const": "svc"}, "port": {"type": "integer"}}}]})
    assert set(_fields(t, {"kind": "svc"})) == {"kind", "port"}
    assert set(_fields(t, {"kind": "lib"})) == {"kind", "registry"}


@pytest.mark.parametrize("values, field, message", [
    ({"slug": "Bad Slug"}, "slug", "Must match the pattern ^[a-z][a-z0-9-]*$"),
    ({"slug": "ab"}, "slug", "Enter at least 3 characters"),
    ({"slug": "a" * 21}, "slug", "Enter at most 20 characters"),
    ({"token": "short"}, "token", "Enter at least 8 characters"),
    ({"name": "-bad-"}, "name", "Must start and end with a letter or digit"),
    ({"owner": "user:default/ana"}, "owner", "Must be a Group (this is a user)"),
    ({"owner": "not a:/"}, "owner", "Must be an entity reference"),
    ({"name": None}, "name", "Required"),
])
def test_each_rule_of_page_one_names_its_field(values: dict[str, Any], field: str, message: str) -> None:
    errors = _errors(_sink(), {"name": "svc", "owner": "group:default/a", "token": "********", **values}, 0)
    assert field in errors and errors[field].startswith(message), errors


@pytest.mark.parametrize("values, field, message", [
    ({"replicas": 0}, "replicas", "Must be 1 or more"),
    ({"replicas": 10}, "replicas", "Must be 9 or less"),
    ({"ratio": 1.5}, "ratio", "Must be 1 or less"),
    ({"language": "rust"}, "language", "Choose one of: Python, Go"),
    ({"tags": ["Bad Tag"]}, "tags", "Tag 'Bad Tag' is not valid"),
    ({"public": True, "domain": "not an address"}, "domain", "Must be a valid email"),
    ({"extras": ["docs", "docs"]}, "extras", "Each item may appear once"),
])
def test_each_rule_of_page_two_names_its_field(values: dict[str, Any], field: str, message: str) -> None:
    t = _sink()
    errors = _errors(t, forms.apply_defaults(t, values), 1)
    assert field in errors and errors[field].startswith(message), errors


@pytest.mark.parametrize("repo, message", [
    ("github.com?owner=acme&repo=svc", None),
    ("gitlab.com?owner=acme&repo=svc", "Host gitlab.com is not allowed here (allowed: github.com)"),
    ("github.com?owner=evil&repo=svc", "Owner evil is not allowed here"),
    ("github.com?repo=svc", "Incomplete repository location provided, owner not provided"),
    ("github.com?owner=acme", "Incomplete repository location provided, repo not provided"),
    ("github.com?owner=acme&repo=../x", "The repository name may hold only"),
    ("?owner=acme&repo=x", "Incomplete repository location provided, host not provided"),
])
def test_the_repository_pickers_rules(repo: str, message: str | None) -> None:
    errors = _errors(_sink(), {"repoUrl": repo}, 2)
    if message is None:
        assert errors == {}
    else:
        assert errors["repoUrl"].startswith(message), errors


def test_messages_never_repeat_a_value() -> None:
    t = _template({"properties": {"pin": {"type": "string", "pattern": "^[0-9]+$", "ui:field": "Secret"}}})
    errors = forms.validate(t, {"pin": "hunter2-secret"})
    assert errors and all("hunter2" not in e.message for e in errors)


def test_an_unknown_field_type_is_named_not_a_broken_form() -> None:
    t = _template({"properties": {"a": {"type": "string", "ui:field": "MyCustomPicker"},
                                  "b": {"type": "string", "ui:widget": "colorwheel"},
                                  "c": {"type": "array", "items": {"type": "object"}}},
                   "dependencies": {"a": {"properties": {"d": {"type": "string", "ui:field": "Hidden3D"}}}}})
    problems = forms.unsupported(t)
    assert problems == ['field "a" uses ui:field "MyCustomPicker", which Callboard cannot show',
                        'field "b" uses ui:widget "colorwheel", which Callboard cannot show',
                        'field "c" is a list of objects, which Callboard cannot show',
                        'field "d" uses ui:field "Hidden3D", which Callboard cannot show']
    assert [e.message for e in forms.validate(t, {})][0].startswith("This template cannot be shown: field \"a\"")
    with pytest.raises(forms.FormBuildError, match="MyCustomPicker"):
        forms.form_pages(t, {})


@pytest.mark.parametrize("raw, kind, want", [
    ("3", "replicas", 3), ("x", "replicas", "Enter a whole number"), ("2.5", "replicas", "Enter a whole number"),
    ("0.25", "ratio", 0.25), ("yes", "public", True), ("no", "public", False), ("maybe", "public", "Answer yes or no"),
    ("Go", "language", "go"), ("go", "language", "go"), ("a, b ,,c", "aliases", ["a", "b", "c"]),
    (["ci", "docs"], "extras", ["ci", "docs"]), ("TechDocs", "extras", ["docs"]), ("", "ratio", None),
])
def test_coercing_what_a_surface_sends(raw: Any, kind: str, want: Any) -> None:
    t = _sink()
    spec = forms.specs_by_name(t, forms.apply_defaults(t, {}))[kind]
    value, problem = forms.coerce(spec, raw)
    assert (problem if isinstance(want, str) and problem else value) == want


def test_pickers_take_what_people_type() -> None:
    t = _sink()
    specs = forms.specs_by_name(t, {})
    assert forms.coerce(specs["owner"], "payments-team")[0] == "group:default/payments-team"
    assert forms.coerce(specs["owner"], "Group:Default/Payments")[0] == "group:default/Payments"
    assert forms.coerce(specs["repoUrl"], "https://github.com/acme/svc.git")[0] == "github.com?owner=acme&repo=svc"
    assert forms.coerce(specs["repoUrl"], "acme/svc")[0] == "github.com?owner=acme&repo=svc"


def test_strict_entity_pickers_need_a_catalog_entity() -> None:
    t = _template({"properties": {"c": {"type": "string", "ui:field": "EntityPicker",
                                        "ui:options": {"allowArbitraryValues": False}}}})
    known = {"component:default/real"}.__contains__
    assert forms.validate(t, {"c": "component:default/real"}, known=known) == []
    assert [e.message for e in forms.validate(t, {"c": "component:default/fake"}, known=known)] == [
        "component:default/fake is not in the catalog"]


def test_review_lists_values_with_secrets_masked() -> None:
    t = _sink()
    values = forms.apply_defaults(t, {"name": "svc", "token": "********", "password": "hunter22",
                                      "extras": ["ci"], "public": True})
    pairs = dict(forms.review_pairs(t, values))
    assert pairs["Deploy token"] == "******" and pairs["Admin password"] == "******"
    assert pairs["Language"] == "Python" and pairs["Extras"] == "CI workflow" and pairs["Public"] == "Yes"
    assert pairs["Size (GB)"] == "10"
    assert "hunter22" not in json.dumps(pairs)


def test_picker_options_put_the_persons_teams_first() -> None:
    teams = [("group:default/payments-team", "Payments"), ("group:default/web-team", None)]
    found = [("group:default/payments-ops", None), ("group:default/payments-team", "Payments"),
             ("user:default/payer", None)]
    choices = rank(teams, found, query="pay", kinds=("Group",), limit=10)
    assert [c.value for c in choices] == ["group:default/payments-team", "group:default/payments-ops"]
    assert choices[0].label == "payments-team (group) · Payments · your team"
    # nothing typed yet: the person's teams are the whole offer
    assert [c.value for c in rank(teams, [], query="", kinds=("Group",), limit=10)] == [k for k, _ in teams]


def test_catalog_filters() -> None:
    doc = {"kind": "Group", "metadata": {"tags": ["Java", "web"]}, "spec": {"type": "team"}}
    assert matches_filter(doc, {"kind": "group", "spec.type": "team"})
    assert not matches_filter(doc, {"kind": "group", "spec.type": "org"})
    assert matches_filter(doc, [{"spec.type": "org"}, {"metadata.tags": "java"}])
    assert matches_filter(doc, {"metadata.tags": "CATALOG_FILTER_EXISTS"})
    assert not matches_filter(doc, {"spec.profile": "CATALOG_FILTER_EXISTS"})


@pytest.mark.reference
def test_the_reference_runs_values_are_what_the_form_would_submit() -> None:
    """Each reference dry-run's values are valid and already hold the form's defaults (the
    ui-defaults runs are exactly what the form sends with nothing changed)."""
    expected = REFERENCE / "expected" / "scaffolder"
    checked = 0
    for run in sorted(expected.glob("*.json")):
        data = json.loads(run.read_text())
        folder = REFERENCE / "templates" / data["template_dir"].split("templates/", 1)[1]
        t = template_from_document(yaml.safe_load((folder / "template.yaml").read_text()))
        values = data["request"]["values"]
        assert forms.unsupported(t) == [], run.name
        assert forms.validate(t, values) == [], run.name
        assert forms.apply_defaults(t, values) == values, run.name
        checked += 1
    assert checked >= 10
