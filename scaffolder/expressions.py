"""``${{ }}`` expressions, rendered as Backstage's scaffolder renders them (nunjucks in a sandbox),
through Jinja2's ``ImmutableSandboxedEnvironment``.

Templates are untrusted. The sandbox here refuses, with an ``ExpressionSecurityError`` naming what:
attribute access to Python internals (any ``__name__``) and JavaScript's (``constructor``,
``__proto__``, ``prototype``), ``include``/``import``/``extends``, and unknown filters; a work
limit (``WorkLimitExceeded``) ends runaway loops, recursion and huge strings. Values are JSON
(what a form submits), so lookups are data lookups: ``values.items`` is the key ``items``, never a
Python method.

nunjucks behaviour the reference templates rely on is kept: ``elseif``, ``null``; comparisons are
JavaScript's (``==``/``!=`` loose: ``1 == "1"``, ``null == undefined``, ``0 == ""``; ``===``/``!==``
strict; arrays and objects equal only themselves; ``<`` on numbers, or on text when both are text;
``in`` as nunjucks' ``inOperator``);
``+`` is JavaScript's (``undefined + "/"`` is ``"undefined/"``, ``"a" + 1`` is ``"a1"``);
arithmetic is on doubles; a value prints the JavaScript way (``true``, ``a,b`` for arrays,
``[object Object]``, nothing for null/undefined); ``~`` is ``a + "" + b`` (``String()`` of each side,
so null and undefined are spelled out); conditions (``if``/``elif``, the inline ``if``, ``not``,
``default(v, d, true)``, ``select``) use JavaScript truthiness (``[]`` and ``{}`` are true) and
``and``/``or`` are ``&&``/``||`` (giving an operand), through ``_JsCodeGenerator``, so values stay
plain JSON; ``dump`` is ``JSON.stringify``; trailing newlines are kept. ``render_value`` renders a step's input or ``spec.output`` as Backstage does:
a string that is exactly one expression keeps the expression's JSON type, one rendering to
nothing is dropped.
"""

from __future__ import annotations

import contextvars
import functools
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from jinja2 import ChainableUndefined, TemplateAssertionError, TemplateSyntaxError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.parser import Parser
from jinja2.filters import FILTERS as JINJA_FILTERS
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range
from jinja2.tests import TESTS as JINJA_TESTS
from jinja2.utils import Cycler, Joiner

__all__ = [
    "ExpressionError", "ExpressionSecurityError", "WorkLimitExceeded", "Limits", "Templater",
    "UNDEFINED", "render_value", "is_truthy", "js_truthy", "js_json", "js_string", "js_text", "DEFAULT_INTEGRATIONS",
    "parse_repo_url", "parse_entity_ref",
]


class ExpressionError(ValueError):
    """A template that cannot be rendered; the message says what and where (never a value's secret)."""


class ExpressionSecurityError(ExpressionError):
    """A template tried to leave the sandbox (an internal attribute, an include, an unknown filter)."""


class WorkLimitExceeded(ExpressionError):
    """A template did more work than a template may (loops, recursion, output size, time)."""


class _Undefined:
    """JavaScript's ``undefined`` inside ``render_value`` results: a key whose value is this is dropped."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Any = _Undefined()

# Hosts whose repository URLs parseRepoUrl understands without configuration (Backstage's defaults).
DEFAULT_INTEGRATIONS: Mapping[str, str] = {
    "github.com": "github",
    "gitlab.com": "gitlab",
    "bitbucket.org": "bitbucketCloud",
    "www.bitbucket.org": "bitbucket",
    "dev.azure.com": "azure",
    # Callboard's own: a git repository on the Callboard host (publish:file), so the golden path
    # needs no GitHub; `local?owner=<owner>&repo=<repo>` as a RepoUrlPicker value
    "local": "file",
}

_REFUSED_NAMES = frozenset({"constructor", "__proto__", "prototype", "__defineGetter__", "__defineSetter__",
                            "__lookupGetter__", "__lookupSetter__"})


@dataclass(frozen=True, slots=True)
class Limits:
    """How much work one render may do."""

    steps: int = 200_000  # loop iterations + calls
    seconds: float = 5.0
    max_string: int = 5_000_000  # characters of any string built by an operator or filter, and of the output
    max_depth: int = 40  # nested calls (macros calling macros)


@dataclass(slots=True)
class _Budget:
    limits: Limits
    steps: int = 0
    depth: int = 0
    deadline: float = field(default=0.0)

    def charge(self, what: str) -> None:
        self.steps += 1
        if self.steps > self.limits.steps:
            raise WorkLimitExceeded(f"the template does too much work ({what}: more than {self.limits.steps} "
                                    "loop iterations and calls); a template's loops must end")
        if self.steps % 256 == 0 and time.monotonic() > self.deadline:
            raise WorkLimitExceeded(f"the template took longer than {self.limits.seconds:g}s to render ({what})")


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("callboard_template_budget", default=None)


def _budget() -> _Budget:
    budget = _BUDGET.get()
    if budget is None:  # rendering outside Templater.render (a test calling a filter): a fresh budget
        budget = _Budget(Limits(), deadline=time.monotonic() + Limits().seconds)
        _BUDGET.set(budget)
    return budget


def _check_size(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _budget().limits.max_string:
        raise WorkLimitExceeded(f"the template built a string longer than {_budget().limits.max_string} characters")
    return value


# --- JavaScript values ---------------------------------------------------------------------------------

def _is_undef(value: Any) -> bool:
    return value is UNDEFINED or isinstance(value, Undefined)


def js_number(value: float | int) -> str:
    """A number as JavaScript's ``String(n)`` prints it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exp = text.split("e")
        sign = "-" if exp.startswith("-") else "+"
        text = f"{mantissa}e{sign}{exp.lstrip('+-').lstrip('0') or '0'}"
    return text


def js_string(value: Any) -> str:
    """JavaScript's ``String(value)``: ``null``/``undefined`` spelled out (as ``+`` does)."""
    if _is_undef(value):
        return "undefined"
    if value is None:
        return "null"
    return _to_text(value)


def _to_text(value: Any) -> str:
    """What a value prints as inside text: JavaScript's, with null and undefined printing nothing."""
    if value is None or _is_undef(value):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return js_number(value)
    if isinstance(value, Mapping):
        return "[object Object]"
    if isinstance(value, (list, tuple)):
        return ",".join(_to_text(v) for v in value)
    if isinstance(value, _JsFunction):
        return f"function {value.name}() {{ [native code] }}"
    return str(value)


def js_text(value: Any) -> str:
    """What ``value`` prints as inside template text (null and undefined print nothing)."""
    return _to_text(value)


def _json_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def js_json(value: Any, indent: int | str | None = None) -> str | None:
    """``JSON.stringify(value, null, indent)``; ``None`` where JavaScript returns ``undefined``."""
    if isinstance(indent, (int, float)) and not isinstance(indent, bool):
        pad = " " * max(0, min(10, int(indent)))
    elif isinstance(indent, str):
        pad = indent[:10]
    else:
        pad = ""

    def enc(v: Any, level: int) -> str | None:
        if _is_undef(v) or isinstance(v, _JsFunction) or callable(v):
            return None
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
                return "null"
            return js_number(v)
        if isinstance(v, str):
            return _json_str(v)
        inner = "\n" + pad * (level + 1) if pad else ""
        close = "\n" + pad * level if pad else ""
        sep = ": " if pad else ":"
        if isinstance(v, Mapping):
            parts = []
            for k, item in v.items():
                text = enc(item, level + 1)
                if text is not None:
                    parts.append(f"{_json_str(str(k))}{sep}{text}")
            if not parts:
                return "{}"
            return "{" + inner + ("," + inner).join(parts) + close + "}"
        if isinstance(v, (list, tuple)):
            if not v:
                return "[]"
            items = [enc(item, level + 1) or "null" for item in v]
            return "[" + inner + ("," + inner).join(items) + close + "]"
        return None

    return enc(value, 0)


def _to_number(value: Any) -> float:
    if value is None:
        return 0.0
    if _is_undef(value):
        return math.nan
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0.0
        try:
            if text.lower().startswith(("0x", "-0x", "+0x")):
                return float.fromhex(text) if text[0] not in "+-" else float(int(text, 16))
            if text in ("Infinity", "+Infinity", "-Infinity"):
                return float(text.replace("Infinity", "inf"))
            if any(c.isalpha() and c not in "eE" for c in text):
                return math.nan
            return float(text)
        except ValueError:
            return math.nan
    if isinstance(value, (list, tuple)):
        return _to_number(_to_text(value)) if len(value) <= 1 else math.nan
    return math.nan


def _number_result(value: float) -> float | int:
    if not math.isnan(value) and not math.isinf(value) and value == int(value) and abs(value) < 2 ** 53:
        return int(value)
    return value


def _is_primitive_string(value: Any) -> bool:
    return isinstance(value, (str, Mapping, list, tuple))


def js_add(left: Any, right: Any) -> Any:
    """JavaScript's ``+``: text when either side is text (or an object/array), else numbers."""
    if _is_primitive_string(left) or _is_primitive_string(right):
        text_left = js_string(left) if not isinstance(left, (Mapping, list, tuple)) else _to_text(left)
        text_right = js_string(right) if not isinstance(right, (Mapping, list, tuple)) else _to_text(right)
        return _check_size(text_left + text_right)
    return _number_result(_to_number(left) + _to_number(right))


def _js_arith(operator: str, left: Any, right: Any) -> Any:
    a, b = _to_number(left), _to_number(right)
    try:
        if operator == "-":
            return _number_result(a - b)
        if operator == "*":
            return _number_result(a * b)
        if operator == "/":
            if b == 0:
                return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1, b)
            return _number_result(a / b)
        if operator == "//":
            if b == 0:
                return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1, b)
            return _number_result(math.floor(a / b))
        if operator == "%":
            if b == 0 or math.isinf(a) or math.isnan(a) or math.isnan(b):
                return math.nan
            return _number_result(math.fmod(a, b))
        if operator == "**":
            return _number_result(math.pow(a, b))
    except (OverflowError, ValueError):
        return math.inf if operator in ("*", "**") else math.nan
    raise ExpressionError(f"operator {operator!r} is not supported")


def is_truthy(value: Any) -> bool:
    """Backstage's ``if:``: false for false, undefined, null, "", 0, NaN and an empty array."""
    if _is_undef(value) or value is None:
        return False
    if isinstance(value, (list, tuple)):
        return len(value) > 0
    if isinstance(value, Mapping):
        return True  # an object is truthy in JavaScript, even an empty one
    if isinstance(value, float) and math.isnan(value):
        return False
    return bool(value)


def js_truthy(value: Any) -> bool:
    """JavaScript's ``!!value`` (nunjucks' ``if``, ``and``/``or``/``not``, the inline ``if``): false for
    false, undefined, null, "", 0 and NaN; every array and object is true, even an empty one."""
    if value is None or _is_undef(value):
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0 and not (isinstance(value, float) and math.isnan(value))
    if isinstance(value, str):
        return value != ""
    return True


def _js_and(left: Any, right: Callable[[], Any]) -> Any:
    """``left && right``: ``left`` when it is falsy, else ``right`` (evaluated only then)."""
    return right() if js_truthy(left) else left


def _js_or(left: Any, right: Callable[[], Any]) -> Any:
    """``left || right``: ``left`` when it is truthy, else ``right`` (evaluated only then)."""
    return left if js_truthy(left) else right()


def _js_concat(parts: Iterable[Any]) -> str:
    """nunjucks' ``a ~ b`` is ``a + "" + b``: each side as ``String(x)`` (``null``/``undefined``
    spelled out, arrays joined with commas, objects ``[object Object]``)."""
    return _check_size("".join(js_string(p) for p in parts))


def _js_type(value: Any) -> str:
    if _is_undef(value):
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"


def js_strict_equal(left: Any, right: Any) -> bool:
    """JavaScript's ``===``: same type and value; arrays and objects only when they are the same one."""
    kind = _js_type(left)
    if kind != _js_type(right):
        return False
    if kind in ("undefined", "null"):
        return True
    if kind == "number":
        return float(left) == float(right)  # NaN is not NaN
    if kind in ("string", "boolean"):
        return bool(left == right)
    return left is right


def js_loose_equal(left: Any, right: Any) -> bool:
    """JavaScript's ``==`` (nunjucks compiles ``==`` to it): ``1 == "1"``, ``null == undefined``,
    ``0 == ""``, ``true == 1``, ``["a"] == "a"``; arrays and objects equal only themselves."""
    a, b = _js_type(left), _js_type(right)
    if a == b:
        return js_strict_equal(left, right)
    nullish = ("undefined", "null")
    if a in nullish or b in nullish:
        return a in nullish and b in nullish
    if a == "boolean":
        return js_loose_equal(_to_number(left), right)
    if b == "boolean":
        return js_loose_equal(left, _to_number(right))
    if a == "number" and b == "string":
        return float(left) == _to_number(right)
    if a == "string" and b == "number":
        return _to_number(left) == float(right)
    if a == "object":  # ToPrimitive: an array or object compares as its string
        return js_loose_equal(_to_text(left), right)
    return js_loose_equal(left, _to_text(right))


def _js_less(left: Any, right: Any) -> bool | None:
    """JavaScript's abstract relational comparison ``left < right``; ``None`` when either is NaN."""
    a = _to_text(left) if _js_type(left) == "object" else left
    b = _to_text(right) if _js_type(right) == "object" else right
    if isinstance(a, str) and isinstance(b, str):
        return a < b
    x, y = _to_number(a), _to_number(b)
    if math.isnan(x) or math.isnan(y):
        return None
    return x < y


def _js_compare(operator: str, left: Any, right: Any) -> bool:
    """A comparison as nunjucks compiles it (JavaScript's operators)."""
    if operator == "eq":
        return js_loose_equal(left, right)
    if operator == "ne":
        return not js_loose_equal(left, right)
    if operator == "seq":
        return js_strict_equal(left, right)
    if operator == "sne":
        return not js_strict_equal(left, right)
    if operator == "lt":
        return _js_less(left, right) is True
    if operator == "gt":
        return _js_less(right, left) is True
    if operator == "lteq":
        return _js_less(right, left) is False
    if operator == "gteq":
        return _js_less(left, right) is False
    if operator == "in":
        return _js_in(left, right)
    if operator == "notin":
        return not _js_in(left, right)
    raise ExpressionError(f"comparison {operator!r} is not supported")


def _js_in(item: Any, container: Any) -> bool:
    """nunjucks' ``in``: an array holds the item, an object the key, a string the text."""
    if isinstance(container, (list, tuple, range)):
        return any(js_strict_equal(item, v) for v in container)
    if isinstance(container, Mapping):
        return js_string(item) in container
    if isinstance(container, str):
        return js_string(item) in container
    raise ExpressionError(f'Cannot use "in" operator to search for "{js_string(item)}" in unexpected types.')


# --- JavaScript methods on strings and arrays (nunjucks exposes them) ------------------------------------

@dataclass(frozen=True, slots=True)
class _JsFunction:
    name: str
    call: Callable[..., Any]

    def __call__(self, *args: Any) -> Any:
        return self.call(*args)


def _js_index(n: Any, length: int, default: int) -> int:
    if _is_undef(n) or n is None:
        return default
    i = int(_to_number(n)) if not math.isnan(_to_number(n)) else 0
    return max(0, length + i) if i < 0 else min(i, length)


def _string_methods(s: str) -> Mapping[str, Callable[..., Any]]:
    return {
        "toUpperCase": lambda: s.upper(),
        "toLowerCase": lambda: s.lower(),
        "trim": lambda: s.strip(),
        "trimStart": lambda: s.lstrip(),
        "trimEnd": lambda: s.rstrip(),
        "split": lambda sep=UNDEFINED, limit=UNDEFINED: (
            [s] if _is_undef(sep) else (list(s) if sep == "" else s.split(_to_text(sep))))[
            : (None if _is_undef(limit) else int(_to_number(limit)))],
        "replace": lambda old, new: s.replace(_to_text(old), _to_text(new), 1),
        "replaceAll": lambda old, new: _check_size(s.replace(_to_text(old), _to_text(new))),
        "includes": lambda sub: _to_text(sub) in s,
        "startsWith": lambda sub: s.startswith(_to_text(sub)),
        "endsWith": lambda sub: s.endswith(_to_text(sub)),
        "indexOf": lambda sub: s.find(_to_text(sub)),
        "slice": lambda start=UNDEFINED, end=UNDEFINED: s[_js_index(start, len(s), 0):_js_index(end, len(s), len(s))],
        "substring": lambda start=UNDEFINED, end=UNDEFINED: s[
            min(_js_index(start, len(s), 0), _js_index(end, len(s), len(s))):
            max(_js_index(start, len(s), 0), _js_index(end, len(s), len(s)))],
        "charAt": lambda i=0: s[int(_to_number(i))] if 0 <= int(_to_number(i)) < len(s) else "",
        "toString": lambda: s,
    }


def _array_methods(a: Sequence[Any]) -> Mapping[str, Callable[..., Any]]:
    return {
        "join": lambda sep=",": _check_size((_to_text(sep) if not _is_undef(sep) else ",").join(_to_text(v) for v in a)),
        "includes": lambda item: item in a,
        "indexOf": lambda item: a.index(item) if item in a else -1,
        "slice": lambda start=UNDEFINED, end=UNDEFINED: list(a[_js_index(start, len(a), 0):_js_index(end, len(a), len(a))]),
        "concat": lambda *others: [*a, *[x for o in others for x in (o if isinstance(o, (list, tuple)) else [o])]],
        "toString": lambda: _to_text(a),
    }


# --- Backstage's filters ---------------------------------------------------------------------------------

def parse_repo_url(url: Any, integrations: Mapping[str, str] = DEFAULT_INTEGRATIONS) -> dict[str, Any]:
    """Backstage's ``parseRepoUrl``: ``github.com?owner=a&repo=b`` to ``{host, owner, repo}``."""
    text = js_string(url)
    try:
        parts = urlsplit(f"https://{text}")
        host = parts.netloc.rsplit("@", 1)[-1].lower()
    except ValueError as exc:
        raise ExpressionError(f"Invalid repo URL passed to publisher, got {text}, {exc}") from None
    if not host or any(c in host for c in " <>\"{}|\\^`"):
        raise ExpressionError(f"Invalid repo URL passed to publisher, got {text}, TypeError: Invalid URL")
    kind = integrations.get(host)
    if kind is None:
        raise ExpressionError(f"No matching integration configuration for host {host}, "
                              "please check your integrations config")
    query = parse_qs(parts.query, keep_blank_values=True)
    got: dict[str, str] = {k: query[k][0].strip("/") for k in ("owner", "organization", "workspace", "project", "repo")
                           if k in query}

    def need(*names: str) -> None:
        for name in names:
            if not got.get(name):
                raise ExpressionError(f"Invalid repo URL passed to publisher: https://{host}/?{parts.query}, "
                                      f"missing {name}")

    if kind == "bitbucket" or kind == "bitbucketCloud":
        if host == "www.bitbucket.org":
            need("workspace")
        need("project", "repo")
    elif kind == "azure":
        need("project", "repo")
    elif kind == "gitlab":
        if not got.get("project"):
            need("owner", "repo")
    elif kind in ("gitea", "gerrit"):
        need("repo")
    else:
        need("repo", "owner")
    result: dict[str, Any] = {"host": host}
    for key in ("owner", "repo", "organization", "workspace", "project"):
        if key in got:
            result[key] = got[key]
    return result


def parse_entity_ref(ref: Any, context: Any = None) -> dict[str, str]:
    """Backstage's ``parseEntityRef``: ``kind:namespace/name`` to ``{kind, namespace, name}``."""
    if not isinstance(ref, str):
        raise ExpressionError(f"Entity reference must be a string, got {_to_text(ref) or js_string(ref)}")
    defaults = context if isinstance(context, Mapping) else {}
    colon = ref.find(":")
    slash = ref.find("/")
    kind: str | None
    if colon != -1 and (slash == -1 or colon < slash):
        kind, rest = ref[:colon], ref[colon + 1:]
    else:
        kind, rest = None, ref
    if "/" in rest:
        namespace, name = rest.split("/", 1)
    else:
        namespace, name = None, rest
    kind = kind or (str(defaults["defaultKind"]) if defaults.get("defaultKind") else None)
    if not kind:
        raise ExpressionError(f'Entity reference "{ref}" had missing or empty kind '
                              '(e.g. did not start with "component:" or similar)')
    namespace = namespace or (str(defaults["defaultNamespace"]) if defaults.get("defaultNamespace") else "default")
    if not name:
        raise ExpressionError(f'Entity reference "{ref}" had missing or empty name')
    return {"kind": kind, "namespace": namespace, "name": name}


_PATH_PART = re.compile(r"[^.\[\]]+|\[(?:(\d+)|\"([^\"]*)\"|'([^']*)')\]")


def _pick(obj: Any, key: Any) -> Any:
    """lodash ``get(obj, path)``."""
    if isinstance(key, (list, tuple)):
        parts: list[Any] = list(key)
    else:
        path = _to_text(key)
        parts = []
        for m in _PATH_PART.finditer(path):
            if m.group(0).startswith("["):
                parts.append(int(m.group(1)) if m.group(1) is not None else (m.group(2) or m.group(3) or ""))
            else:
                parts.append(m.group(0))
    current = obj
    for part in parts:
        if isinstance(current, Mapping) and str(part) in current:
            current = current[str(part)]
        elif isinstance(current, (list, tuple)) and str(part).isdigit() and int(part) < len(current):
            current = current[int(part)]
        elif isinstance(current, (list, tuple, str)) and part == "length":
            current = len(current)
        else:
            return UNDEFINED
    return current


def _json_roundtrip(value: Any) -> Any:
    """A filter's result crosses Backstage's sandbox as JSON."""
    text = js_json(value)
    return UNDEFINED if text is None else json.loads(text)


# --- nunjucks built-in filters -----------------------------------------------------------------------------

def _f_dump(value: Any, spaces: Any = None) -> str:
    return js_json(value, spaces) or ""


def _f_join(value: Any, sep: Any = "", attribute: Any = None) -> str:
    if _is_undef(value) or value is None:
        return ""
    items = list(value.values()) if isinstance(value, Mapping) else list(value) if isinstance(value, (list, tuple)) else [value]
    if attribute is not None and not _is_undef(attribute):
        items = [item.get(str(attribute), UNDEFINED) if isinstance(item, Mapping) else UNDEFINED for item in items]
    return _check_size(_to_text(sep).join(_to_text(v) for v in items))


def _f_length(value: Any) -> int:
    if _is_undef(value) or value is None:
        return 0
    if isinstance(value, (str, list, tuple, Mapping)):
        return len(value)
    return 0


def _f_default(value: Any, default: Any = UNDEFINED, boolean: Any = False) -> Any:
    """nunjucks' ``default(value, def, boolean)``: ``def`` for undefined only, or for any falsy value
    when ``boolean`` is truthy (an empty array or object is not falsy)."""
    if js_truthy(boolean):
        return value if js_truthy(value) else default
    return default if _is_undef(value) else value


def _f_string(value: Any) -> str:
    return _to_text(value) if not (value is None or _is_undef(value)) else js_string(value)


def _capped(name: str, cap: int = 10_000) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A Jinja filter whose numeric arguments (widths, counts) are capped so it cannot fill memory."""

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)  # keeps Jinja's pass_context/pass_eval_context marks
        def guarded(*args: Any, **kwargs: Any) -> Any:
            for v in [*args[1:], *kwargs.values()]:
                if isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) > cap:
                    raise WorkLimitExceeded(f"filter {name}: {v} is larger than a template may ask for ({cap})")
            return _check_size(func(*args, **kwargs))

        return guarded

    return wrap


def _select_filter(func: Callable[..., Any], fixed: int) -> Callable[..., Any]:
    """nunjucks' ``select``/``reject``/``selectattr``/``rejectattr``: an array, and without a test
    name the ``truthy`` test (JavaScript truthiness), where Jinja gives a generator and uses Python's."""

    @functools.wraps(func)  # keeps Jinja's pass_context mark
    def run(context: Any, value: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if len(args) < fixed:
            args = (*args, "truthy")
        return list(func(context, value, *args, **kwargs))

    return run


def _nunjucks_filters() -> dict[str, Callable[..., Any]]:
    """The filters nunjucks has, JavaScript-flavoured where the difference shows."""
    take = ("abs", "batch", "capitalize", "center", "dictsort", "escape", "e", "first", "float", "forceescape",
            "groupby", "indent", "int", "last", "list", "lower", "random", "reject", "rejectattr", "replace",
            "reverse", "round", "safe", "select", "selectattr", "slice", "sort", "striptags", "sum", "title",
            "trim", "truncate", "upper", "urlencode", "urlize", "wordcount")
    filters: dict[str, Callable[..., Any]] = {name: JINJA_FILTERS[name] for name in take}
    for name, cap in (("center", 10_000), ("indent", 10_000), ("batch", 10_000), ("slice", 10_000),
                      ("truncate", 1_000_000), ("replace", 1_000_000)):
        filters[name] = _capped(name, cap)(JINJA_FILTERS[name])
    for name, fixed in (("select", 1), ("reject", 1), ("selectattr", 2), ("rejectattr", 2)):
        filters[name] = _select_filter(JINJA_FILTERS[name], fixed)
    filters.update({
        "dump": _f_dump, "join": _f_join, "length": _f_length, "default": _f_default, "d": _f_default,
        "string": _f_string, "nl2br": lambda v: _to_text(v).replace("\r\n", "<br />\n").replace("\n", "<br />\n"),
    })
    return filters


# --- the sandbox -----------------------------------------------------------------------------------------

class _JsUndefined(ChainableUndefined):
    """nunjucks' undefined: prints nothing, any lookup on it is undefined again."""

    __slots__ = ()

    def __str__(self) -> str:
        return ""


def _finalize(value: Any) -> str:
    return _check_size(_to_text(value))


class _JsCodeGenerator(CodeGenerator):
    """Jinja's code generator with nunjucks' JavaScript semantics where Python's would show:
    conditions (``if``/``elif``, the inline ``if``, a loop's ``if``, ``not``) use JavaScript
    truthiness, ``and``/``or`` are ``&&``/``||`` (short-circuit, giving an operand), and ``~`` is
    ``a + "" + b``. The environment is not ``optimized``: Jinja's constant folding would apply Python
    semantics at compile time."""

    def _output_child_to_const(self, node: nodes.Expr, frame: Frame, finalize: Any) -> str:
        # Jinja folds any constant expression it prints with Python's semantics (`true ~ 1` would be
        # "True1"); only literal text and plain constants are printed at compile time here.
        if not isinstance(node, (nodes.TemplateData, nodes.Const)):
            raise nodes.Impossible()
        return str(super()._output_child_to_const(node, frame, finalize))

    def _truthy(self, node: nodes.Node, frame: Frame) -> None:
        self.write("environment.js_truthy(")
        self.visit(node, frame)
        self.write(")")

    def visit_If(self, node: nodes.If, frame: Frame) -> None:
        if_frame = frame.soft()
        self.writeline("if ", node)
        self._truthy(node.test, if_frame)
        self.write(":")
        self.indent()
        self.blockvisit(node.body, if_frame)
        self.outdent()
        for elif_ in node.elif_:
            self.writeline("elif ", elif_)
            self._truthy(elif_.test, if_frame)
            self.write(":")
            self.indent()
            self.blockvisit(elif_.body, if_frame)
            self.outdent()
        if node.else_:
            self.writeline("else:")
            self.indent()
            self.blockvisit(node.else_, if_frame)
            self.outdent()

    def visit_CondExpr(self, node: nodes.CondExpr, frame: Frame) -> None:
        frame = frame.soft()
        self.write("(")
        self.visit(node.expr1, frame)
        self.write(" if ")
        self._truthy(node.test, frame)
        self.write(" else ")
        if node.expr2 is not None:
            self.visit(node.expr2, frame)
        else:  # nunjucks: `a if c` without else is undefined when c is falsy
            self.write("undefined()")
        self.write(")")

    def _short_circuit(self, func: str, node: nodes.BinExpr, frame: Frame) -> None:
        self.write(f"environment.{func}(")
        self.visit(node.left, frame)
        self.write(", lambda: ")
        self.visit(node.right, frame)
        self.write(")")

    def visit_And(self, node: nodes.BinExpr, frame: Frame) -> None:
        self._short_circuit("js_and", node, frame)

    def visit_Or(self, node: nodes.BinExpr, frame: Frame) -> None:
        self._short_circuit("js_or", node, frame)

    def visit_Not(self, node: nodes.UnaryExpr, frame: Frame) -> None:
        self.write("(not ")
        self._truthy(node.node, frame)
        self.write(")")

    def visit_Compare(self, node: nodes.Compare, frame: Frame) -> None:
        # nunjucks: `a < b < c` is JavaScript's `(a < b) < c`
        for op in reversed(node.ops):
            self.write(f"environment.js_compare({op.op!r}, ")
        self.visit(node.expr, frame)
        for op in node.ops:
            self.write(", ")
            self.visit(op.expr, frame)
            self.write(")")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.js_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _NunjucksParser(Parser):
    """Jinja's parser with nunjucks' precedence for ``~``: nunjucks parses ``parseConcat`` above
    ``parseAdd`` (``1 + 2 ~ 3`` is ``"33"``), Jinja the other way round (``1 + (2 ~ 3)``)."""

    def parse_math1(self) -> nodes.Expr:  # what parse_compare asks for: nunjucks' parseConcat
        lineno = self.stream.current.lineno
        args = [self._parse_add()]
        while self.stream.current.type == "tilde":
            next(self.stream)
            args.append(self._parse_add())
        return args[0] if len(args) == 1 else nodes.Concat(args, lineno=lineno)

    def _parse_add(self) -> nodes.Expr:  # nunjucks' parseAdd/parseSub, over the multiplications
        lineno = self.stream.current.lineno
        left = self.parse_math2()
        while self.stream.current.type in ("add", "sub"):
            cls: type[nodes.BinExpr] = nodes.Add if self.stream.current.type == "add" else nodes.Sub
            next(self.stream)
            left = cls(left, self.parse_math2(), lineno=lineno)
            lineno = self.stream.current.lineno
        return left


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    code_generator_class = _JsCodeGenerator
    js_truthy = staticmethod(js_truthy)
    js_and = staticmethod(_js_and)
    js_or = staticmethod(_js_or)
    js_concat = staticmethod(_js_concat)
    js_compare = staticmethod(_js_compare)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        return _NunjucksParser(self, source, name, filename).parse()

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr in _REFUSED_NAMES:
            return False
        return bool(super().is_safe_attribute(obj, attr, value))

    def _refuse(self, name: str) -> None:
        raise ExpressionSecurityError(f"access to {name!r} is not allowed in a template (sandbox)")

    def _lookup(self, obj: Any, name: Any) -> Any:
        if isinstance(name, str) and (name in _REFUSED_NAMES or name.startswith("__")):
            self._refuse(name)
        if isinstance(obj, Undefined):
            return self.undefined(obj=obj, name=str(name))
        if obj is None:  # nunjucks: a lookup on null is undefined, not an error
            return self.undefined(name=str(name))
        if isinstance(obj, Mapping):
            if name in obj:
                return obj[name]
            if isinstance(name, (int, float)) and not isinstance(name, bool) and js_number(name) in obj:
                return obj[js_number(name)]
            return self.undefined(obj=obj, name=str(name))
        if isinstance(obj, (list, tuple, str)):
            if isinstance(name, bool):
                return self.undefined(obj=obj, name=str(name))
            if isinstance(name, (int, float)) or (isinstance(name, str) and name.isdigit()):
                index = int(name)
                if float(name) == index and 0 <= index < len(obj):
                    return obj[index]
                return self.undefined(obj=obj, name=str(name))
            if name == "length":
                return len(obj)
            methods = _string_methods(obj) if isinstance(obj, str) else _array_methods(obj)
            if isinstance(name, str) and name in methods:
                return _JsFunction(name, methods[name])
            return self.undefined(obj=obj, name=str(name))
        if isinstance(obj, (int, float, bool)):
            return self.undefined(obj=obj, name=str(name))
        if isinstance(obj, _JsFunction):
            if name in ("name",):
                return obj.name
            return self.undefined(obj=obj, name=str(name))
        # Jinja's own objects (loop, cycler, joiner, macros): the sandbox's rules
        if isinstance(name, str):
            value = super().getattr(obj, name)
        else:
            value = super().getitem(obj, name)
        if isinstance(value, Undefined) and getattr(value, "_undefined_exception", None) is SecurityError:
            self._refuse(str(name))
        return value

    def getattr(self, obj: Any, attribute: str) -> Any:
        return self._lookup(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        return self._lookup(obj, argument)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "+":
            return js_add(left, right)
        return _js_arith(operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = _budget()
        budget.charge("a call")
        if isinstance(__obj, _JsFunction):
            if kwargs:
                raise ExpressionError(f"{__obj.name}() takes no keyword arguments")
            try:
                return __obj(*args)
            except (TypeError, ValueError) as exc:
                raise ExpressionError(f"{__obj.name}(): {exc}") from None
        budget.depth += 1
        try:
            if budget.depth > budget.limits.max_depth:
                raise WorkLimitExceeded(f"the template nests calls deeper than {budget.limits.max_depth} "
                                        "(a macro calling itself without end?)")
            return super().call(__context, __obj, *args, **kwargs)
        finally:
            budget.depth -= 1


def _loop_guard(iterable: Any, pairs: bool = False) -> Iterator[Any]:
    """Every ``{% for %}`` iterates through this: it charges the work budget and iterates objects
    as nunjucks does (``for k, v in obj`` gives entries)."""
    budget = _budget()
    if iterable is None or isinstance(iterable, Undefined):
        return
    if isinstance(iterable, Mapping):
        source: Iterable[Any] = iterable.items() if pairs else iterable.keys()
    elif isinstance(iterable, (str, list, tuple, range)) or hasattr(iterable, "__iter__"):
        source = iterable
    else:
        raise ExpressionError(f"cannot loop over {_to_text(iterable)!r}")
    for item in source:
        budget.charge("a loop")
        yield item


def _guard_loops(template: nodes.Template) -> None:
    for loop in template.find_all(nodes.For):
        pairs = isinstance(loop.target, nodes.Tuple) and len(loop.target.items) == 2
        loop.iter = nodes.Filter(loop.iter, "_callboard_loop", [nodes.Const(pairs)], [], None, None,
                                 lineno=loop.lineno)
        if loop.test is not None:  # `{% for x in xs if x %}`: JavaScript truthiness, as every condition here
            loop.test = nodes.Filter(loop.test, "_callboard_truthy", [], [], None, None, lineno=loop.lineno)


_REFUSED_NODES: tuple[tuple[type[nodes.Node], str], ...] = (
    (nodes.Include, "include"), (nodes.Import, "import"), (nodes.FromImport, "import"),
    (nodes.Extends, "extends"),
)

_TAG_REGION = re.compile(r"(\$\{\{|\{\{|\{%)(.*?)(\}\}|%\})", re.S)
_STRICT_EQ = re.compile(r"""('(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")|(!==|===)""", re.S)
_ELSEIF = re.compile(r"(\{%-?\s*)elseif\b")


_STRICT_MARK = "_callboard_strict"


def _strict_compares(template: nodes.Template) -> None:
    """``a === b`` reaches Jinja's parser as ``a == _callboard_strict == b`` (Jinja has no ``===``):
    the marked operand pair becomes one strict comparison (``seq``/``sne``), which the code
    generator tells apart from JavaScript's loose ``==``."""
    for compare in template.find_all(nodes.Compare):
        ops: list[nodes.Operand] = []
        items = list(compare.ops)
        i = 0
        while i < len(items):
            op = items[i]
            if (isinstance(op.expr, nodes.Name) and op.expr.name == _STRICT_MARK and op.op in ("eq", "ne")
                    and i + 1 < len(items) and items[i + 1].op == "eq"):
                ops.append(nodes.Operand("seq" if op.op == "eq" else "sne", items[i + 1].expr, lineno=op.lineno))
                i += 2
            else:
                ops.append(op)
                i += 1
        compare.ops = ops


def _nunjucks_syntax(source: str) -> str:
    """nunjucks spellings Jinja lacks: ``===``/``!==`` (outside string literals) and ``elseif``."""
    if "==" not in source and "elseif" not in source:
        return source

    def fix_region(m: re.Match[str]) -> str:
        inner = _STRICT_EQ.sub(lambda q: q.group(1) or f" {q.group(2)[:-1]} {_STRICT_MARK} == ", m.group(2))
        return m.group(1) + inner + m.group(3)

    text = _TAG_REGION.sub(fix_region, source) if "==" in source else source
    return _ELSEIF.sub(lambda m: m.group(1) + "elif", text)


class Templater:
    """Renders template text with Backstage's delimiters (``${{ }}``, or ``{{ }}`` for
    ``cookiecutterCompat``) and filters, in the sandbox."""

    def __init__(self, *, cookiecutter_compat: bool = False, integrations: Mapping[str, str] | None = None,
                 filters: Mapping[str, Callable[..., Any]] | None = None,
                 template_globals: Mapping[str, Any] | None = None,
                 trim_blocks: bool = False, lstrip_blocks: bool = False, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.integrations = dict(integrations or DEFAULT_INTEGRATIONS)
        env = _Sandbox(
            variable_start_string="{{" if cookiecutter_compat else "${{",
            variable_end_string="}}",
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=trim_blocks,
            lstrip_blocks=lstrip_blocks,
            undefined=_JsUndefined,
            finalize=_finalize,
            cache_size=0,
            optimized=False,  # constant folding would apply Python's semantics (`[] or 1`, `true ~ 1`)
        )
        env.filters.clear()
        env.filters.update(_nunjucks_filters())
        integ = self.integrations
        env.filters.update({
            "parseRepoUrl": lambda url: _json_roundtrip(parse_repo_url(url, integ)),
            "parseEntityRef": lambda ref, context=None: _json_roundtrip(parse_entity_ref(ref, context)),
            "pick": lambda obj, key: _json_roundtrip(_pick(obj, key)),
            "projectSlug": lambda url: "{owner}/{repo}".format(**{"owner": "undefined", **parse_repo_url(url, integ)}),
        })
        if cookiecutter_compat:
            env.filters["jsonify"] = _f_dump
        for name, func in (filters or {}).items():
            env.filters[name] = (lambda f: lambda *a: _json_roundtrip(f(*a)))(func)
        env.filters["_callboard_loop"] = _loop_guard
        env.filters["_callboard_truthy"] = js_truthy
        env.tests.clear()  # nunjucks tests are few; Jinja's `is` tests are not nunjucks
        env.tests.update({name: test for name, test in JINJA_TESTS.items()
                          if name in ("defined", "undefined", "none", "number", "string", "odd", "even",
                                      "divisibleby", "equalto", "sameas", "iterable", "mapping", "lower",
                                      "upper", "eq", "ne", "lt", "gt", "le", "ge", "in")})
        env.tests.update({"truthy": js_truthy, "falsy": lambda v: not js_truthy(v),
                          # nunjucks' eq/equalto/ne are === and !==
                          "eq": js_strict_equal, "equalto": js_strict_equal,
                          "ne": lambda a, b: not js_strict_equal(a, b)})
        env.globals.clear()
        env.globals.update({"range": safe_range, "cycler": Cycler, "joiner": Joiner, "null": None})
        env.globals.update(template_globals or {})
        self._env = env
        self._cache: dict[str, Any] = {}
        self.filter_names = frozenset(n for n in env.filters if not n.startswith("_"))

    @staticmethod
    def shared(*, cookiecutter_compat: bool = False, integrations: Mapping[str, str] | None = None,
               trim_blocks: bool = False, lstrip_blocks: bool = False) -> Templater:
        """A process-wide templater for these settings, so compiled templates are reused across runs
        (compiling is most of a dry-run's time). Rendering state lives in the call, not here."""
        return _shared_templater(cookiecutter_compat, tuple(sorted((integrations or DEFAULT_INTEGRATIONS).items())),
                                 trim_blocks, lstrip_blocks)

    def _compile(self, source: str) -> Any:
        compiled = self._cache.get(source)
        if compiled is not None:
            return compiled
        text = _nunjucks_syntax(source)
        try:
            ast = self._env.parse(text)
        except TemplateSyntaxError as exc:
            raise ExpressionError(f"template syntax error at line {exc.lineno}: {exc.message}") from None
        for node_type, what in _REFUSED_NODES:
            node = next(ast.find_all(node_type), None)
            if node is not None:
                raise ExpressionSecurityError(f"{what} is not allowed in a template (line {node.lineno})")
        for filt in ast.find_all(nodes.Filter):
            if filt.name not in self._env.filters or filt.name.startswith("_"):
                raise ExpressionSecurityError(f"unknown filter {filt.name!r} (line {filt.lineno}); "
                                              f"filters: {', '.join(sorted(self.filter_names))}")
        for test in ast.find_all(nodes.Test):
            if test.name not in self._env.tests:
                raise ExpressionSecurityError(f"unknown test {test.name!r} (line {test.lineno})")
        _guard_loops(ast)
        _strict_compares(ast)
        for pair in ast.find_all(nodes.Pair):  # nunjucks: `{ key: v }` has the key "key", as in JavaScript
            if isinstance(pair.key, nodes.Name):
                pair.key = nodes.Const(pair.key.name, lineno=pair.key.lineno)
        try:
            code = self._env.compile(ast)
        except (TemplateSyntaxError, TemplateAssertionError) as exc:
            raise ExpressionError(f"template error at line {exc.lineno}: {exc.message}") from None
        compiled = self._env.template_class.from_code(self._env, code, self._env.make_globals(None), None)
        if len(self._cache) > 2048:
            self._cache.clear()
        self._cache[source] = compiled
        return compiled

    def parse(self, source: str) -> nodes.Template:
        try:
            return self._env.parse(_nunjucks_syntax(source))
        except TemplateSyntaxError as exc:
            raise ExpressionError(f"template syntax error at line {exc.lineno}: {exc.message}") from None

    def render(self, source: str, context: Mapping[str, Any]) -> str:
        """The text ``source`` rendered with ``context`` (JSON values)."""
        if "{" not in source:  # nothing to render (no ${{, {{, {% or {#)
            return source
        template = self._compile(source)
        budget = _Budget(self.limits, deadline=time.monotonic() + self.limits.seconds)
        token = _BUDGET.set(budget)
        try:
            out = template.render(dict(context))
        except ExpressionError:
            raise
        except RecursionError:
            raise WorkLimitExceeded("the template recursed too deeply") from None
        except SecurityError as exc:
            raise ExpressionSecurityError(f"refused by the sandbox: {exc}") from None
        except (TemplateError, UndefinedError) as exc:
            raise ExpressionError(f"template error: {exc}") from None
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, ZeroDivisionError, OverflowError) as exc:
            raise ExpressionError(f"template error: {type(exc).__name__}: {exc}") from None
        finally:
            _BUDGET.reset(token)
        if len(out) > self.limits.max_string:
            raise WorkLimitExceeded(f"the template's output is longer than {self.limits.max_string} characters")
        return out

    def is_single_expression(self, source: str) -> bool:
        """Backstage's ``isSingleTemplateString``: the whole text is one node that is not plain text."""
        body = self.parse(source).body
        if len(body) != 1:
            return False
        node = body[0]
        if isinstance(node, nodes.Output):
            return len(node.nodes) == 1 and not isinstance(node.nodes[0], nodes.TemplateData)
        return True


@functools.lru_cache(maxsize=32)
def _shared_templater(cookiecutter_compat: bool, integrations: tuple[tuple[str, str], ...], trim_blocks: bool,
                      lstrip_blocks: bool) -> Templater:
    return Templater(cookiecutter_compat=cookiecutter_compat, integrations=dict(integrations),
                     trim_blocks=trim_blocks, lstrip_blocks=lstrip_blocks)


_SINGLE = re.compile(r"\$\{\{(.+)\}\}")


def _render_string(value: str, context: Mapping[str, Any], templater: Templater) -> Any:
    if "${{" not in value and "{%" not in value and "{#" not in value:
        return value
    if templater.is_single_expression(value):
        wrapped = _SINGLE.sub(lambda m: "${{ ( " + m.group(1) + " ) | dump }}", value)
        rendered = templater.render(wrapped, context)
        if rendered == "":
            return UNDEFINED
        try:
            return json.loads(rendered)
        except ValueError:
            pass  # as Backstage: not JSON after all (a {% %} block): render it as text
    rendered = templater.render(value, context)
    return UNDEFINED if rendered == "" else rendered


def render_value(value: Any, context: Mapping[str, Any], templater: Templater, *, where: str = "") -> Any:
    """A step's input (or ``spec.output``) rendered: every string in it, at any depth. Keys whose value
    renders to nothing are dropped (``UNDEFINED`` at the top); array items that do become ``None``.
    Errors name the key they happened at."""

    def walk(v: Any, path: str) -> Any:
        if isinstance(v, str):
            try:
                return _render_string(v, context, templater)
            except ExpressionError as exc:
                raise type(exc)(f"{path or 'value'}: {exc}") from None
        if isinstance(v, Mapping):
            out: dict[str, Any] = {}
            for k, item in v.items():
                rendered = walk(item, f"{path}.{k}" if path else str(k))
                if rendered is not UNDEFINED:
                    out[str(k)] = rendered
            return out
        if isinstance(v, (list, tuple)):
            return [None if (r := walk(item, f"{path}[{i}]")) is UNDEFINED else r for i, item in enumerate(v)]
        return v

    return walk(value, where)
