"""``${{ }}`` rendering: Backstage's (nunjucks) behaviour, and the sandbox's refusals."""

from __future__ import annotations

from typing import Any

import pytest

from callboard.scaffolder.expressions import (
    UNDEFINED, ExpressionError, ExpressionSecurityError, Limits, Templater, WorkLimitExceeded, is_truthy,
    js_json, parse_entity_ref, parse_repo_url, render_value,
)

CTX: dict[str, Any] = {
    "parameters": {
        "name": "orders", "count": 3, "ratio": 2.5, "flag": False, "topics": ["a", "b"], "nothing": None,
        "owner": {"kind": "Group"}, "repoUrl": "github.com?owner=acme&repo=orders", "items": "the key",
    },
}


@pytest.fixture
def t() -> Templater:
    return Templater()


def test_a_value_that_is_one_expression_keeps_its_json_type(t: Templater) -> None:
    assert render_value("${{ parameters.count }}", CTX, t) == 3
    assert render_value("${{ parameters.flag }}", CTX, t) is False
    assert render_value("${{ parameters.topics }}", CTX, t) == ["a", "b"]
    assert render_value("${{ parameters.owner }}", CTX, t) == {"kind": "Group"}
    assert render_value("${{ parameters.nothing }}", CTX, t) is None
    assert render_value("${{parameters.name}}", CTX, t) == "orders"


def test_inside_text_values_print_the_javascript_way(t: Templater) -> None:
    assert render_value("n=${{ parameters.count }}", CTX, t) == "n=3"
    assert render_value("f=${{ parameters.flag }}", CTX, t) == "f=false"
    assert render_value("t=${{ parameters.topics }}", CTX, t) == "t=a,b"
    assert render_value("o=${{ parameters.owner }}", CTX, t) == "o=[object Object]"
    assert render_value("x=${{ parameters.nothing }}|${{ parameters.missing }}", CTX, t) == "x=|"
    assert render_value("r=${{ parameters.ratio * 2 }}", CTX, t) == "r=5"


def test_a_value_rendering_to_nothing_is_dropped_from_its_mapping(t: Templater) -> None:
    out = render_value({"a": "${{ parameters.missing }}", "b": "x", "c": ["${{ parameters.missing }}"]}, CTX, t)
    assert out == {"b": "x", "c": [None]}
    assert render_value("${{ parameters.missing }}", CTX, t) is UNDEFINED


def test_javascript_operators(t: Templater) -> None:
    assert render_value("${{ parameters.missing + '/' + parameters.name }}", CTX, t) == "undefined/orders"
    assert render_value("${{ parameters.name + 1 }}", CTX, t) == "orders1"
    assert render_value("${{ parameters.count + 1 }}", CTX, t) == 4
    assert render_value("${{ parameters.count === 3 }}", CTX, t) is True
    assert render_value("${{ parameters.count !== 3 }}", CTX, t) is False
    assert t.render("${{ 'a' * 3 }}", CTX) == "NaN"  # no string repetition: JavaScript has none
    assert render_value("${{ 'a' * 3 }}", CTX, t) is None  # NaN is null in JSON
    assert render_value("${{ 7 / 2 }}", CTX, t) == 3.5
    assert render_value("${{ parameters.name if parameters.missing else null }}", CTX, t) is None


def test_lookups_are_data_lookups_and_javascript_members(t: Templater) -> None:
    assert render_value("${{ parameters.items }}", CTX, t) == "the key"  # never dict.items
    assert render_value("${{ parameters.topics.length }}", CTX, t) == 2
    assert render_value("${{ parameters.topics[1] }}", CTX, t) == "b"
    assert render_value("${{ parameters['name'].toUpperCase() }}", CTX, t) == "ORDERS"
    assert render_value("${{ parameters.topics.join('-') }}", CTX, t) == "a-b"
    assert render_value("${{ parameters.missing.deeper.still }}", CTX, t) is UNDEFINED


def test_backstage_filters(t: Templater) -> None:
    assert render_value("${{ parameters.repoUrl | parseRepoUrl }}", CTX, t) == {
        "host": "github.com", "owner": "acme", "repo": "orders"}
    assert render_value("${{ parameters.repoUrl | projectSlug }}", CTX, t) == "acme/orders"
    assert render_value("${{ parameters.repoUrl | parseRepoUrl | pick('repo') }}", CTX, t) == "orders"
    assert render_value("${{ 'group:team-a' | parseEntityRef }}", CTX, t) == {
        "kind": "group", "namespace": "default", "name": "team-a"}
    assert render_value("${{ 'team-a' | parseEntityRef({ defaultKind: 'Group', defaultNamespace: 'ops' }) }}",
                        CTX, t) == {"kind": "Group", "namespace": "ops", "name": "team-a"}
    assert render_value("${{ parameters.topics | dump }}", CTX, t) == '["a","b"]'  # a string, as in Backstage
    assert t.render("${{ parameters.topics | dump }}", CTX) == '["a","b"]'
    assert t.render("${{ parameters.owner | dump(2) }}", CTX) == '{\n  "kind": "Group"\n}'
    assert t.render("${{ parameters.topics | join(', ') | upper }}", CTX) == "A, B"
    assert t.render("${{ parameters.missing | default('dflt') }}", CTX) == "dflt"
    assert t.render("${{ parameters.topics | length }}", CTX) == "2"


def test_parse_repo_url_errors_name_the_problem() -> None:
    with pytest.raises(ExpressionError, match="No matching integration configuration for host example.org"):
        parse_repo_url("example.org?owner=a&repo=b")
    with pytest.raises(ExpressionError, match="missing repo"):
        parse_repo_url("github.com?owner=a")
    assert parse_repo_url("gitlab.com?project=42")["project"] == "42"
    assert parse_repo_url("git.acme.io?owner=a&repo=b", {"git.acme.io": "github"})["host"] == "git.acme.io"
    with pytest.raises(ExpressionError, match="missing or empty kind"):
        parse_entity_ref("team-a")


def test_skeleton_text_keeps_trailing_newlines_and_whitespace_control(t: Templater) -> None:
    ctx = {"values": {"name": "svc", "description": ""}}
    src = "name: ${{ values.name | dump }}\n  {%- if values.description %}\n  description: x\n  {%- endif %}\nend\n"
    assert t.render(src, ctx) == 'name: "svc"\nend\n'
    assert t.render("{% for k, v in values %}${{ k }}=${{ v }};{% endfor %}", ctx) == "name=svc;description=;"
    assert t.render("{% if values.name === 'svc' %}a{% elseif values.name %}b{% endif %}", ctx) == "a"
    assert t.render("if (a === b) { ${{ values.name }} }", ctx) == "if (a === b) { svc }"  # text is left alone


def test_cookiecutter_compat_uses_plain_braces_and_jsonify() -> None:
    t = Templater(cookiecutter_compat=True)
    assert t.render("{{ cookiecutter.name | jsonify }} ${{ x }}", {"cookiecutter": {"name": "a"}}) == '"a" $'


def test_truthiness_is_backstages() -> None:
    assert not is_truthy([]) and is_truthy({}) and not is_truthy("") and not is_truthy(0)
    assert not is_truthy(None) and not is_truthy(UNDEFINED) and is_truthy("false")


def test_json_is_javascripts() -> None:
    assert js_json({"a": 1.0, "b": [None, UNDEFINED], "c": UNDEFINED, "d": "é\n"}) == '{"a":1,"b":[null,null],"d":"é\\n"}'
    assert js_json(UNDEFINED) is None


# --- the sandbox ----------------------------------------------------------------------------------

@pytest.mark.parametrize("source", [
    "${{ parameters.__class__ }}",
    "${{ parameters.name.__class__.__mro__ }}",
    "${{ ''.__class__.__mro__[1].__subclasses__() }}",
    "${{ parameters['__class__'] }}",
    "${{ parameters.constructor }}",
    "${{ parameters.constructor.constructor('return process')() }}",
    "${{ parameters.__proto__ }}",
    "${{ range.constructor }}",
    "${{ range.__globals__ }}",
    "${{ cycler.__init__.__globals__ }}",
    "{% set c = joiner() %}${{ c.__call__.__globals__ }}",
    "${{ parameters.topics.join.__self__ }}",
])
def test_sandbox_escapes_are_refused_naming_the_attribute(t: Templater, source: str) -> None:
    with pytest.raises(ExpressionSecurityError, match="not allowed in a template"):
        t.render(source, CTX)


@pytest.mark.parametrize(("source", "what"), [
    ("{% include 'etc/passwd' %}", "include"),
    ("{% import 'x' as y %}", "import"),
    ("{% from 'x' import y %}", "import"),
    ("{% extends 'base' %}", "extends"),
])
def test_includes_imports_and_extends_are_refused(t: Templater, source: str, what: str) -> None:
    with pytest.raises(ExpressionSecurityError, match=f"{what} is not allowed"):
        t.render(source, CTX)


def test_an_unknown_filter_is_refused_naming_it(t: Templater) -> None:
    with pytest.raises(ExpressionSecurityError, match="unknown filter 'attr'"):
        t.render("${{ parameters | attr('x') }}", CTX)
    with pytest.raises(ExpressionSecurityError, match="unknown filter 'nosuch'"):
        render_value("${{ parameters.name | nosuch }}", CTX, t)
    with pytest.raises(ExpressionSecurityError, match="unknown filter 'jsonify'"):
        t.render("${{ parameters.name | jsonify }}", CTX)  # only in cookiecutter compatibility


@pytest.mark.parametrize("source", [
    "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    "{% macro f(n) %}${{ f(n) }}{% endmacro %}${{ f(1) }}",
    "{% for a in parameters.topics %}{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}{% endfor %}",
    "${{ 'x' | center(100000000) }}",
])
def test_runaway_work_is_ended_by_the_work_limit(t: Templater, source: str) -> None:
    with pytest.raises(WorkLimitExceeded):
        t.render(source, CTX)


def test_the_output_size_is_limited() -> None:
    t = Templater(limits=Limits(max_string=1000))
    with pytest.raises(WorkLimitExceeded, match="longer than 1000"):
        t.render("{% for i in range(2000) %}x{% endfor %}", CTX)


def test_a_syntax_error_says_where(t: Templater) -> None:
    with pytest.raises(ExpressionError, match="line 2"):
        t.render("ok\n${{ parameters.name | }}", CTX)
    with pytest.raises(ExpressionError, match=r"^input\.message: "):
        render_value({"message": "${{ ( }}"}, CTX, t, where="input")
