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


# JavaScript truthiness inside templates (nunjucks compiles `if`, `and`, `or`, `not` and the inline
# `if` to JavaScript's `if`, `&&`, `||`, `!`, `?:`): `[]` and `{}` are true; 0, "", null, undefined,
# NaN and false are false. The expected values are what nunjucks renders.
TRUTH_CTX: dict[str, Any] = {
    "parameters": {"empty": [], "obj": {}, "zero": 0, "blank": "", "nothing": None, "list": ["a", "b"],
                   "nan": float("nan"), "no": False, "text": "false"},
}


@pytest.mark.parametrize(("source", "nunjucks"), [
    ("{% if parameters.empty %}T{% else %}F{% endif %}", "T"),
    ("{% if parameters.obj %}T{% else %}F{% endif %}", "T"),
    ("{% if parameters.zero %}A{% elif parameters.empty %}B{% else %}C{% endif %}", "B"),
    ("{% if parameters.blank %}A{% elif parameters.nothing %}B{% elif parameters.nan %}C{% else %}D{% endif %}", "D"),
    ("{% if parameters.missing or parameters.no %}T{% else %}F{% endif %}", "F"),
    ("{% if parameters.text %}T{% endif %}", "T"),
    ("${{ 'T' if parameters.empty else 'F' }}|${{ 'T' if parameters.obj else 'F' }}|"
     "${{ 'T' if parameters.zero else 'F' }}", "T|T|F"),
    ("${{ not parameters.empty }}|${{ not parameters.obj }}|${{ not parameters.zero }}|${{ not parameters.missing }}",
     "false|false|true|true"),
    # `||` and `&&` give an operand, not a boolean, and decide on JavaScript truthiness
    ("${{ parameters.empty or 'd' }}|${{ parameters.obj or 'd' }}|${{ parameters.zero or 'd' }}|"
     "${{ parameters.blank or 'd' }}|${{ parameters.nan or 'd' }}", "|[object Object]|d|d|d"),
    ("${{ parameters.empty and 'x' }}|${{ parameters.zero and 'x' }}|${{ parameters.nothing and 'x' }}", "x|0|"),
    ("${{ parameters.nothing or parameters.blank or 'last' }}", "last"),
    ("${{ parameters.list | length }}{% for x in parameters.list %}-${{ x }}{% endfor %}", "2-a-b"),
    ("${{ 'x' if parameters.zero }}|", "|"),  # no else: undefined, printing nothing
    # literals too (Jinja would fold these at compile time with Python's truthiness)
    ("${{ [] or 'd' }}|${{ {} and 1 }}|${{ not [] }}|{% if {} %}T{% endif %}", "|1|false|T"),
])
def test_conditions_use_javascript_truthiness(t: Templater, source: str, nunjucks: str) -> None:
    assert t.render(source, TRUTH_CTX) == nunjucks


def test_and_or_evaluate_their_right_side_only_when_javascript_would(t: Templater) -> None:
    # the right side would fail (a refused lookup) if it were evaluated
    assert t.render("${{ parameters.empty or parameters.list.__class__ }}", TRUTH_CTX) == ""
    assert t.render("${{ parameters.zero and parameters.list.__class__ }}", TRUTH_CTX) == "0"
    with pytest.raises(ExpressionSecurityError):
        t.render("${{ parameters.zero or parameters.list.__class__ }}", TRUTH_CTX)


def test_a_single_expression_keeps_the_operand_and_or_gives(t: Templater) -> None:
    assert render_value("${{ parameters.empty or 'd' }}", TRUTH_CTX, t) == []
    assert render_value("${{ parameters.obj and parameters.list }}", TRUTH_CTX, t) == ["a", "b"]
    assert render_value("${{ parameters.zero or parameters.missing }}", TRUTH_CTX, t) is UNDEFINED
    assert render_value({"a": "${{ parameters.zero and 1 }}", "b": "${{ not parameters.empty }}"},
                        TRUTH_CTX, t) == {"a": 0, "b": False}


@pytest.mark.parametrize(("source", "nunjucks"), [
    # default(value, def): def for undefined only; default(value, def, true): def for any falsy value
    ("${{ parameters.missing | default('d') }}|${{ parameters.nothing | default('d') }}|"
     "${{ parameters.zero | default('d') }}|${{ parameters.empty | default('d') }}", "d||0|"),
    ("${{ parameters.empty | default('d', true) }}|${{ parameters.obj | default('d', true) }}|"
     "${{ parameters.blank | default('d', true) }}|${{ parameters.zero | default('d', true) }}|"
     "${{ parameters.nothing | default('d', true) }}|${{ parameters.nan | default('d', true) }}",
     "|[object Object]|d|d|d|d"),
    ("${{ parameters.list | select('truthy') | join('+') }}|${{ [0, [], '', {}] | select('falsy') | length }}",
     "a+b|2"),
    ("{% for x in [0, 1, [], '', null, 'a'] if x %}[${{ x }}]{% endfor %}", "[1][][a]"),
])
def test_filters_and_tests_use_javascript_truthiness(t: Templater, source: str, nunjucks: str) -> None:
    assert t.render(source, TRUTH_CTX) == nunjucks


@pytest.mark.parametrize(("source", "nunjucks"), [
    # nunjucks compiles `a ~ b` to `a + "" + b`: JavaScript's String() of each side
    ("${{ true ~ '|' ~ false }}", "true|false"),
    ("${{ parameters.list ~ '|' ~ parameters.obj ~ '|' ~ parameters.empty ~ '|' }}", "a,b|[object Object]||"),
    ("${{ 1.0 ~ '|' ~ 2.5 ~ '|' ~ (1 / 3) ~ '|' ~ parameters.nan }}", "1|2.5|0.3333333333333333|NaN"),
    ("${{ parameters.nothing ~ '|' ~ parameters.missing }}", "null|undefined"),
    ("${{ [1, null, [2, 3]] ~ '' }}", "1,,2,3"),
    ("${{ 'n=' ~ (parameters.list | length) }}", "n=2"),
    # printing: null and undefined print nothing, the rest as String()
    ("${{ true }}|${{ none }}|${{ null }}|${{ 1.0 }}|${{ [true, false] }}|${{ {} }}", "true|||1|true,false|[object Object]"),
])
def test_tilde_concatenates_the_javascript_way(t: Templater, source: str, nunjucks: str) -> None:
    assert t.render(source, TRUTH_CTX) == nunjucks


def test_tilde_keeps_its_string_type_as_a_single_expression(t: Templater) -> None:
    assert render_value("${{ 1 ~ 2 }}", TRUTH_CTX, t) == "12"
    assert render_value("${{ parameters.no ~ '' }}", TRUTH_CTX, t) == "false"


EQ_CTX: dict[str, Any] = {"p": {"one": 1, "text1": "1", "zero": 0, "blank": "", "nothing": None, "no": False,
                                "yes": True, "list": ["a"], "obj": {"k": 1}, "nan": float("nan"), "ten": "10",
                                "nine": "9"}}


@pytest.mark.parametrize(("source", "nunjucks"), [
    # `==`/`!=` are JavaScript's loose equality, `===`/`!==` strict
    ("${{ p.one == p.text1 }}|${{ p.one === p.text1 }}|${{ p.one != p.text1 }}|${{ p.one !== p.text1 }}",
     "true|false|false|true"),
    ("${{ p.nothing == p.missing }}|${{ p.nothing === p.missing }}|${{ p.nothing == 0 }}|${{ p.missing == false }}",
     "true|false|false|false"),
    ("${{ p.zero == p.blank }}|${{ p.zero == p.no }}|${{ p.yes == 1 }}|${{ p.yes === 1 }}|${{ p.yes == '1' }}",
     "true|true|true|false|true"),
    ("${{ p.list == 'a' }}|${{ p.list == p.list }}|${{ p.list == ['a'] }}|${{ p.list === p.list }}|"
     "${{ p.obj == '[object Object]' }}", "true|true|false|true|true"),
    ("${{ p.nan == p.nan }}|${{ p.nan != p.nan }}|${{ 1.0 === 1 }}|${{ 'a' == 'a' }}", "false|true|true|true"),
    # the marker behind === stays out of string literals
    ("${{ 'a === b' }}|${{ \"x !== y\" == 'x !== y' }}", "a === b|true"),
    # relational operators: numbers, or text when both sides are text
    ("${{ p.nine < p.ten }}|${{ p.nine < 10 }}|${{ p.missing < 1 }}|${{ p.missing >= 1 }}|${{ p.nothing >= 0 }}",
     "false|true|false|false|true"),
    ("${{ 1 < 2 < 3 }}|${{ 3 > 2 > 1 }}", "true|false"),  # (3 > 2) > 1 is true > 1, false
    # `in`: an array holds it (===), an object has the key, a string contains String(it)
    ("${{ 'a' in p.list }}|${{ 1 in ['1'] }}|${{ 'k' in p.obj }}|${{ 1 in 'a1' }}|${{ 'z' not in p.list }}",
     "true|false|true|true|true"),
    ("${{ p.one is eq(1) }}|${{ p.text1 is eq(1) }}|${{ p.text1 is ne(1) }}", "true|false|true"),
])
def test_comparisons_are_javascripts(t: Templater, source: str, nunjucks: str) -> None:
    assert t.render(source, EQ_CTX) == nunjucks


def test_in_on_a_value_that_holds_nothing_fails_as_nunjucks_does(t: Templater) -> None:
    with pytest.raises(ExpressionError, match='Cannot use "in" operator'):
        t.render("${{ 'a' in p.missing }}", EQ_CTX)


def test_tilde_binds_looser_than_plus_as_in_nunjucks(t: Templater) -> None:
    """nunjucks' parser reads ``~`` (parseConcat) above ``+``/``-`` (parseAdd), below comparisons;
    Jinja's the other way round: ``1 + 2 ~ 3`` is "33" in nunjucks, 1 + "23" in Jinja."""
    assert render_value("${{ 1 + 2 ~ 3 }}", CTX, t) == "33"
    assert render_value("${{ 'a' ~ 1 + 2 ~ 'b' }}", CTX, t) == "a3b"
    assert render_value("${{ 2 * 3 ~ 4 - 1 }}", CTX, t) == "63"
    assert render_value("${{ 1 ~ 2 == '12' }}", CTX, t) is True
