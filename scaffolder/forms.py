"""A template's parameter pages as forms: fields, defaults, conditional fields, validation, pickers.

Each page of ``spec.parameters`` (a JSON Schema object with Backstage's ``ui:*`` keys) becomes a
``FormPage`` whose fields are the properties shown *for the values so far*: ``dependencies``
(property and schema dependencies, ``oneOf`` branches chosen by the controlling value),
``allOf``/``if``/``then``/``else``, and a page-level ``oneOf``/``anyOf`` are resolved the way
Backstage's form (react-jsonschema-form) resolves them, and values of fields no longer shown are
dropped (Backstage's ``omitExtraData``). Nested objects become fields named by their dotted path
(``railsArguments.database``); the values stay nested, as Backstage submits them.

Defaults are applied as the web form applies them (the backend never does): a property's
``default`` when it has no value, nested objects included, branches' defaults once the branch is
shown. Validation lives here, once: JSON Schema (``jsonschema``, Draft 7 as Backstage's ajv) plus
the pickers' own rules (an entity name's shape, allowed kinds, a repository location's host,
owner and repo, tags); each problem is a ``FieldError`` naming its field. Messages never repeat a
value (it may be a secret).

A field Callboard cannot show (an unknown ``ui:field`` or ``ui:widget``, a list of objects) is
reported by ``unsupported`` with its name before any page is shown, never as a broken form.

``ui:field: Secret`` fields are Backstage's secrets: the value goes to ``secrets`` under the
field's name and the parameter holds as many ``*`` as it had characters (what Backstage's
``SecretInput`` does), so nothing downstream ever sees it in ``parameters``.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema

from callboard.catalog.model import RefParseError, parse_ref
from callboard.commands.forms import Choice, Field, FieldError, FieldType, FormPage

from .model import TemplateDef

__all__ = [
    "PICKERS",
    "TAG",
    "FieldSpec",
    "FormBuildError",
    "apply_defaults",
    "coerce",
    "copy_values",
    "display_value",
    "field_specs",
    "form_pages",
    "get_path",
    "is_secret_mask",
    "mask_secret",
    "page_fields",
    "repo_url",
    "resolve",
    "review_pairs",
    "set_path",
    "specs_by_name",
    "unsupported",
    "validate",
    "validate_page",
    "values_of_page",
]

#: The Backstage field extensions Callboard shows (``ui:field``), each as one ``FieldType``.
PICKERS: Mapping[str, FieldType] = {
    "EntityPicker": FieldType.ENTITY,
    "OwnerPicker": FieldType.ENTITY,
    "OwnedEntityPicker": FieldType.ENTITY,
    "EntityNamePicker": FieldType.TEXT,
    "EntityTagsPicker": FieldType.STRINGS,
    "RepoUrlPicker": FieldType.REPO_URL,
    "Secret": FieldType.PASSWORD,
}
#: react-jsonschema-form's widgets Callboard has an input for (``ui:widget``).
_WIDGETS = frozenset({"text", "textarea", "password", "email", "uri", "color", "date", "datetime", "time", "updown",
                      "range", "radio", "select", "checkbox", "checkboxes", "hidden"})
#: Backstage's OwnerPicker offers groups and users unless ``allowedKinds`` says otherwise.
_OWNER_KINDS = ("Group", "User")
#: Kubernetes' object name rule, which Backstage's EntityNamePicker applies (isValidObjectName).
_ENTITY_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
#: Backstage's tag rule (catalog-model's isValidTag).
#: a tag as the catalog model allows it (words of a-z 0-9 : + #, joined by single hyphens)
TAG = re.compile(r"^[a-z0-9:+#]+(-[a-z0-9:+#]+)*$")
_REPO = re.compile(r"^[A-Za-z0-9_.-]+$")
_OWNER = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")  # GitLab's groups/subgroups too
_SCALARS = {"string", "number", "integer", "boolean"}


class FormBuildError(ValueError):
    """A template whose parameters Callboard cannot show as a form; the message names the field."""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One shown field: where its value lives, its schema, and the ``Field`` a surface shows."""

    path: tuple[str, ...]
    schema: Mapping[str, Any]
    field: Field
    picker: str | None = None  # the ui:field, when the field is one of Backstage's field extensions
    hidden: bool = False  # ui:widget: hidden (its default still applies)

    @property
    def name(self) -> str:
        return self.field.name

    @property
    def secret(self) -> bool:
        return self.picker == "Secret"

    @property
    def options(self) -> Mapping[str, Any]:
        opts = self.schema.get("ui:options")
        return opts if isinstance(opts, Mapping) else {}


# --- values by path ---------------------------------------------------------------------------------


def get_path(values: Mapping[str, Any], path: Sequence[str]) -> Any:
    node: Any = values
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def set_path(values: dict[str, Any], path: Sequence[str], value: Any) -> None:
    """Set (or, with ``None``, remove) the value at ``path``, creating the objects on the way."""
    node = values
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            if value is None:
                return
            child = {} if not isinstance(child, Mapping) else dict(child)
            node[key] = child
        node = child
    if value is None:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value


def copy_values(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: copy_values(v) if isinstance(v, Mapping) else (list(v) if isinstance(v, list) else v)
            for k, v in values.items()}


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != []


# --- resolving conditionals ---------------------------------------------------------------------------


def _valid(schema: Any, value: Any) -> bool:
    if not isinstance(schema, Mapping):
        return True
    try:
        return bool(jsonschema.Draft7Validator(_plain_schema(schema)).is_valid(value))
    except jsonschema.SchemaError:
        return False


def _plain_schema(schema: Any) -> Any:
    """The schema without ``ui:*`` keys (jsonschema ignores them, but they need not be checked)."""
    if isinstance(schema, Mapping):
        return {k: _plain_schema(v) for k, v in schema.items() if not (isinstance(k, str) and k.startswith("ui:"))}
    if isinstance(schema, list):
        return [_plain_schema(v) for v in schema]
    return schema


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Merge a branch into an object schema: properties deep-merged, ``required`` united."""
    props = base.setdefault("properties", {})
    for name, sub in (extra.get("properties") or {}).items():
        if isinstance(sub, Mapping) and isinstance(props.get(name), Mapping):
            merged = dict(props[name])
            merged.update(sub)
            props[name] = merged
        elif isinstance(sub, Mapping):
            props[name] = dict(sub)
    for name in extra.get("required") or ():
        if name not in base.setdefault("required", []):
            base["required"].append(name)
    for key, val in extra.items():  # other keywords of the branch (its own conditionals are resolved already)
        if key not in ("properties", "required", "dependencies", "allOf", "oneOf", "anyOf", "if", "then", "else"):
            base.setdefault(key, val)


def resolve(schema: Mapping[str, Any], values: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    """An object schema with its conditionals resolved for ``values``: what the form shows now."""
    if depth > 16:
        raise FormBuildError("the parameters' conditionals nest more than 16 deep")
    out: dict[str, Any] = {k: v for k, v in schema.items()
                           if k not in ("properties", "required", "dependencies", "allOf", "oneOf", "anyOf",
                                        "if", "then", "else")}
    out["properties"] = {k: dict(v) for k, v in (schema.get("properties") or {}).items() if isinstance(v, Mapping)}
    out["required"] = [r for r in (schema.get("required") or []) if isinstance(r, str)]
    for sub in schema.get("allOf") or ():
        if isinstance(sub, Mapping):
            _merge(out, resolve(sub, values, depth + 1))
    if isinstance(schema.get("if"), Mapping):
        branch = schema.get("then") if _valid(schema["if"], values) else schema.get("else")
        if isinstance(branch, Mapping):
            _merge(out, resolve(branch, values, depth + 1))
    for key in ("oneOf", "anyOf"):
        branches = [b for b in schema.get(key) or () if isinstance(b, Mapping)]
        if branches:
            chosen = next((b for b in branches if _valid({**b, "required": []}, values)), branches[0])
            _merge(out, resolve(chosen, values, depth + 1))
    deps = schema.get("dependencies")
    if isinstance(deps, Mapping):
        for name, dep in deps.items():
            if not _present(values.get(name)):
                continue
            if isinstance(dep, list):
                for r in dep:
                    if isinstance(r, str) and r not in out["required"]:
                        out["required"].append(r)
            elif isinstance(dep, Mapping):
                _merge(out, _dependency(name, dep, values, depth))
    return out


def _dependency(name: str, dep: Mapping[str, Any], values: Mapping[str, Any], depth: int) -> dict[str, Any]:
    """A schema dependency: its own part, and the ``oneOf`` branch whose ``name`` matches the value
    (rjsf's withExactlyOneSubschema)."""
    own = resolve({k: v for k, v in dep.items() if k != "oneOf"}, values, depth + 1)
    branches = [b for b in dep.get("oneOf") or () if isinstance(b, Mapping)]
    matching = [b for b in branches
                if _valid({"type": "object", "properties": {name: (b.get("properties") or {}).get(name, {})}},
                          {name: values.get(name)})]
    if len(matching) == 1:
        chosen = dict(matching[0])
        chosen["properties"] = {k: v for k, v in (chosen.get("properties") or {}).items() if k != name}
        _merge(own, resolve(chosen, values, depth + 1))
    return own


# --- fields ---------------------------------------------------------------------------------------


def _type_of(schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind is None and "properties" in schema:
        return "object"
    if kind is None and "default" in schema:
        default = schema["default"]
        return ("boolean" if isinstance(default, bool) else "integer" if isinstance(default, int)
                else "number" if isinstance(default, float) else "array" if isinstance(default, list)
                else "object" if isinstance(default, Mapping) else "string")
    return kind if isinstance(kind, str) else ("string" if kind is None else None)


def _ordered(props: Mapping[str, Any], order: Any) -> list[str]:
    names = list(props)
    if not isinstance(order, list):
        return names
    listed = [n for n in order if isinstance(n, str) and n != "*"]
    rest = [n for n in names if n not in listed]
    if "*" in order:
        i = order.index("*")
        before = [n for n in order[:i] if n in props]
        after = [n for n in order[i + 1:] if n in props]
        return before + rest + after
    return [n for n in listed if n in props] + rest


def _choices(schema: Mapping[str, Any]) -> tuple[Choice, ...]:
    enum = schema.get("enum") or ()
    names = schema.get("enumNames")
    labels = list(names) if isinstance(names, list) and len(names) == len(enum) else None
    return tuple(Choice(value=_text(v), label=str(labels[i]) if labels else _text(v)) for i, v in enumerate(enum))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _field_problem(name: str, schema: Mapping[str, Any]) -> str | None:
    """Why Callboard cannot show this property, or None."""
    picker = schema.get("ui:field")
    if picker is not None and picker not in PICKERS:
        return f'field "{name}" uses ui:field "{picker}", which Callboard cannot show'
    widget = schema.get("ui:widget")
    if widget is not None and widget not in _WIDGETS:
        return f'field "{name}" uses ui:widget "{widget}", which Callboard cannot show'
    kind = _type_of(schema)
    if picker is not None:
        return None
    if kind == "array":
        items = schema.get("items")
        if not isinstance(items, Mapping) or (not items.get("enum") and _type_of(items) not in ("string", None)):
            return f'field "{name}" is a list of {_type_of(items) if isinstance(items, Mapping) else "unknown items"}s, ' \
                   'which Callboard cannot show'
        return None
    if kind not in _SCALARS and kind not in ("object", "null"):
        return f'field "{name}" has type {kind!r}, which Callboard cannot show'
    return None


def _spec(path: tuple[str, ...], schema: Mapping[str, Any], required: bool, current: Any,
          hosts: Sequence[str]) -> FieldSpec:
    name = ".".join(path)
    problem = _field_problem(name, schema)
    if problem:
        raise FormBuildError(problem)
    picker = schema.get("ui:field") if isinstance(schema.get("ui:field"), str) else None
    widget = schema.get("ui:widget")
    kind = _type_of(schema)
    opts = schema.get("ui:options") if isinstance(schema.get("ui:options"), Mapping) else {}
    assert isinstance(opts, Mapping)
    kinds: tuple[str, ...] = ()
    choices: tuple[Choice, ...] = ()
    field_hosts: tuple[str, ...] = ()
    if picker is not None:
        ftype = PICKERS[picker]
        if ftype is FieldType.ENTITY:
            kinds = _picker_kinds(picker, opts)
        if ftype is FieldType.REPO_URL:
            allowed = opts.get("allowedHosts")
            field_hosts = tuple(str(h) for h in allowed) if isinstance(allowed, list) and allowed else tuple(hosts)
    elif kind == "array":
        items = schema.get("items") if isinstance(schema.get("items"), Mapping) else {}
        assert isinstance(items, Mapping)
        if items.get("enum"):
            ftype, choices = FieldType.MULTI_CHOICE, _choices(items)
        else:
            ftype = FieldType.STRINGS
    elif schema.get("enum"):
        ftype, choices = FieldType.CHOICE, _choices(schema)
    elif kind == "boolean":
        ftype = FieldType.BOOLEAN
    elif kind == "integer":
        ftype = FieldType.INTEGER
    elif kind == "number":
        ftype = FieldType.NUMBER
    elif widget == "textarea":
        ftype = FieldType.MULTILINE
    elif widget == "password":
        ftype = FieldType.PASSWORD
    else:
        ftype = FieldType.TEXT
    help_text = schema.get("ui:help") or schema.get("description")
    placeholder = schema.get("ui:placeholder")
    shown = current if current is not None else schema.get("default")
    field = Field(
        name=name,
        label=str(schema.get("title") or path[-1]),
        type=ftype,
        required=required,
        # what the field shows first: its value so far, else its default (never a secret)
        default=None if ftype is FieldType.PASSWORD else shown,
        help=str(help_text) if help_text else None,
        placeholder=str(placeholder) if placeholder else None,
        autofocus=schema.get("ui:autofocus") is True,
        choices=choices,
        min_length=schema["minLength"] if isinstance(schema.get("minLength"), int) else None,
        max_length=schema["maxLength"] if isinstance(schema.get("maxLength"), int) else None,
        minimum=_number(schema.get("minimum")),
        maximum=_number(schema.get("maximum")),
        pattern=schema["pattern"] if isinstance(schema.get("pattern"), str) else None,
        kinds=kinds,
        hosts=field_hosts,
        suggest=picker == "EntityTagsPicker",
    )
    return FieldSpec(path=path, schema=schema, field=field, picker=picker, hidden=widget == "hidden")


def _picker_kinds(picker: str, opts: Mapping[str, Any]) -> tuple[str, ...]:
    allowed = opts.get("allowedKinds")
    if isinstance(allowed, list) and allowed:
        return tuple(str(k) for k in allowed)
    kinds: list[str] = []
    filters = opts.get("catalogFilter")
    for f in filters if isinstance(filters, list) else [filters] if isinstance(filters, Mapping) else []:
        if isinstance(f, Mapping):
            kind = f.get("kind")
            kinds.extend(str(k) for k in (kind if isinstance(kind, list) else [kind] if isinstance(kind, str) else []))
    if kinds:
        return tuple(dict.fromkeys(kinds))
    return _OWNER_KINDS if picker == "OwnerPicker" else ()


def _walk(schema: Mapping[str, Any], values: Mapping[str, Any], prefix: tuple[str, ...], hosts: Sequence[str],
          out: list[FieldSpec]) -> None:
    resolved = resolve(schema, values)
    props = resolved["properties"]
    required = set(resolved["required"])
    for key in _ordered(props, schema.get("ui:order")):
        sub = props[key]
        path = (*prefix, key)
        if _type_of(sub) == "object" and not sub.get("ui:field"):
            inner = values.get(key)
            _walk(sub, inner if isinstance(inner, Mapping) else {}, path, hosts, out)
            continue
        if _type_of(sub) == "null" or ("const" in sub and "enum" not in sub and "type" not in sub):
            continue
        out.append(_spec(path, sub, key in required, values.get(key), hosts))


def field_specs(page: Mapping[str, Any], values: Mapping[str, Any], *, hosts: Sequence[str] = ("github.com",)
                ) -> list[FieldSpec]:
    """The fields a parameter page shows for ``values`` (hidden ones included, marked)."""
    out: list[FieldSpec] = []
    _walk(page, values, (), hosts, out)
    names = [s.name for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise FormBuildError(f'two fields are both named "{dupes[0]}" (a property name with a dot in it)')
    return out


def page_fields(page: Mapping[str, Any], values: Mapping[str, Any], *, hosts: Sequence[str] = ("github.com",)
                ) -> tuple[Field, ...]:
    return tuple(s.field for s in field_specs(page, values, hosts=hosts) if not s.hidden)


def form_pages(template: TemplateDef, values: Mapping[str, Any], *, hosts: Sequence[str] = ("github.com",)
               ) -> tuple[FormPage, ...]:
    """Every parameter page as a ``FormPage`` for the values so far (``FormBuildError`` if one cannot be shown)."""
    pages = []
    for i, page in enumerate(template.parameters):
        desc = page.get("description")
        pages.append(FormPage(title=str(page.get("title") or f"Step {i + 1}"),
                              fields=page_fields(page, values, hosts=hosts),
                              description=str(desc) if desc else None))
    return tuple(pages)


def unsupported(template: TemplateDef) -> list[str]:
    """Every field of every page (every branch of its conditionals too) Callboard cannot show."""
    problems: list[str] = []

    def visit(schema: Any, prefix: tuple[str, ...], depth: int) -> None:
        if not isinstance(schema, Mapping) or depth > 16:
            return
        for key, sub in (schema.get("properties") or {}).items():
            if not isinstance(sub, Mapping):
                continue
            path = (*prefix, str(key))
            if _type_of(sub) == "object" and not sub.get("ui:field"):
                visit(sub, path, depth + 1)
                continue
            problem = _field_problem(".".join(path), sub)
            if problem and problem not in problems:
                problems.append(problem)
        for key in ("allOf", "oneOf", "anyOf"):
            for sub in schema.get(key) or ():
                visit(sub, prefix, depth + 1)
        for key in ("then", "else"):
            visit(schema.get(key), prefix, depth + 1)
        deps = schema.get("dependencies")
        if isinstance(deps, Mapping):
            for dep in deps.values():
                if isinstance(dep, Mapping):
                    visit(dep, prefix, depth + 1)
                    for sub in dep.get("oneOf") or ():
                        visit(sub, prefix, depth + 1)

    for page in template.parameters:
        visit(page, (), 0)
    return problems


# --- defaults --------------------------------------------------------------------------------------


def _defaults(schema: Mapping[str, Any], values: dict[str, Any], depth: int = 0) -> None:
    """rjsf's getDefaultFormState for one object: a default where there is no value, nested objects
    created when they hold defaults, resolved again when a default makes a branch appear."""
    for _ in range(4):  # a default may turn on a dependency whose fields have defaults of their own
        before = repr(values)
        resolved = resolve(schema, values)
        for key, sub in resolved["properties"].items():
            if _type_of(sub) == "object" and not sub.get("ui:field") and depth < 16:
                inner = values.get(key)
                child = dict(inner) if isinstance(inner, Mapping) else (
                    dict(sub["default"]) if isinstance(sub.get("default"), Mapping) else {})
                _defaults(sub, child, depth + 1)
                if child or isinstance(inner, Mapping):
                    values[key] = child
            elif values.get(key) is None and "default" in sub and sub["default"] is not None:
                default = sub["default"]
                values[key] = copy_values(default) if isinstance(default, Mapping) else (
                    list(default) if isinstance(default, list) else default)
        if repr(values) == before:
            return


def apply_defaults(template: TemplateDef, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with every page's defaults filled in, as Backstage's web form fills them."""
    out = copy_values(values)
    for page in template.parameters:
        _defaults(page, out)
    return out


def values_of_page(page: Mapping[str, Any], values: Mapping[str, Any],
                   *, hosts: Sequence[str] = ("github.com",)) -> dict[str, Any]:
    """The values a page holds: only its shown fields' (Backstage's omitExtraData)."""
    out: dict[str, Any] = {}
    for spec in field_specs(page, values, hosts=hosts):
        value = get_path(values, spec.path)
        if value is not None:
            set_path(out, spec.path, value)
    return out


# --- coercing what a surface sent ------------------------------------------------------------------------


_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off", ""}


def coerce(spec: FieldSpec, raw: Any, *, hosts: Sequence[str] = ()) -> tuple[Any, str | None]:
    """A surface's value for a field as the value the template gets (``None``: no value), or an
    error message. Surfaces send strings, booleans and lists of strings."""
    f = spec.field
    if raw is None or (isinstance(raw, str) and raw == "" and f.type is not FieldType.BOOLEAN):
        return None, None
    t = f.type
    if t is FieldType.BOOLEAN:
        if isinstance(raw, bool):
            return raw, None
        word = str(raw).strip().lower()
        if word in _TRUE:
            return True, None
        if word in _FALSE:
            return False, None
        return None, "Answer yes or no"
    if t in (FieldType.NUMBER, FieldType.INTEGER):
        if isinstance(raw, bool):
            return None, "Enter a number"
        if isinstance(raw, (int, float)):
            number: float | int = raw
        else:
            text = str(raw).strip()
            try:
                number = int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
            except ValueError:
                return None, "Enter a whole number" if t is FieldType.INTEGER else "Enter a number"
            if number != number or number in (float("inf"), float("-inf")):
                return None, "Enter a number"
        if t is FieldType.INTEGER:
            if isinstance(number, float) and not number.is_integer():
                return None, "Enter a whole number"
            return int(number), None
        return number, None
    if t is FieldType.CHOICE:
        return _choose(spec, raw, spec.schema.get("enum") or [])
    if t is FieldType.MULTI_CHOICE:
        items = spec.schema.get("items") if isinstance(spec.schema.get("items"), Mapping) else {}
        assert isinstance(items, Mapping)
        chosen = []
        for one in _list(raw):
            value, problem = _choose(spec, one, items.get("enum") or [])
            if problem:
                return None, problem
            if value not in chosen:
                chosen.append(value)
        return chosen or None, None
    if t is FieldType.STRINGS:
        return _list(raw) or None, None
    if not isinstance(raw, str):
        return None, "Enter text"
    if t is FieldType.ENTITY:
        return _entity_ref(spec, raw.strip()), None
    if t is FieldType.REPO_URL:
        return repo_url(raw.strip(), f.hosts or tuple(hosts)), None
    return raw, None


def _list(raw: Any) -> list[str]:
    if isinstance(raw, str):
        raw = raw.replace("\n", ",").split(",")
    if not isinstance(raw, (list, tuple)):
        return []
    return [str(v).strip() for v in raw if v is not None and str(v).strip()]


def _choose(spec: FieldSpec, raw: Any, enum: Sequence[Any]) -> tuple[Any, str | None]:
    text = _text(raw).strip()
    for value in enum:
        if _text(value) == text:
            return value, None
    choices = spec.field.choices
    for choice, value in zip(choices, enum):
        if choice.label.strip().lower() == text.lower():
            return value, None
    shown = ", ".join(c.label for c in choices[:12]) + ("…" if len(choices) > 12 else "")
    return None, f"Choose one of: {shown}"


def _entity_ref(spec: FieldSpec, text: str) -> str:
    """Backstage's EntityPicker: a typed name becomes a full ref with the default kind and namespace."""
    opts = spec.options
    default_kind = opts.get("defaultKind") if isinstance(opts.get("defaultKind"), str) else None
    if default_kind is None and len(spec.field.kinds) == 1:
        default_kind = spec.field.kinds[0]
    default_ns = opts.get("defaultNamespace") if isinstance(opts.get("defaultNamespace"), str) else "default"
    try:
        ref = parse_ref(text, default_kind=default_kind, default_namespace=default_ns or "default")
    except RefParseError:
        return text
    return f"{ref.kind.lower()}:{ref.namespace.lower()}/{ref.name}"


def repo_url(text: str, hosts: Sequence[str]) -> str:
    """What a person types for a repository as RepoUrlPicker's value ``host?owner=…&repo=…``:
    that form as it is, a URL (``https://github.com/acme/x``), or ``acme/x`` when one host is allowed."""
    if "?" in text and "://" not in text:
        return text
    m = re.fullmatch(r"(?:https?://)?([A-Za-z0-9.-]+\.[A-Za-z]{2,}(?::\d+)?)/(.+?)/([^/]+?)(?:\.git)?/?", text)
    if m:
        return f"{m.group(1)}?{urllib.parse.urlencode({'owner': m.group(2), 'repo': m.group(3)})}"
    m = re.fullmatch(r"([^/\s?]+(?:/[^/\s?]+)*)/([^/\s?]+)", text)
    if m and len(hosts) == 1:
        return f"{hosts[0]}?{urllib.parse.urlencode({'owner': m.group(1), 'repo': m.group(2)})}"
    return text


# --- validation -----------------------------------------------------------------------------------------


#: what a failed JSON-Schema keyword says, with its value as ``want`` (``s``: a plural's ending)
_SIMPLE_MESSAGES = {
    "pattern": "Must match the pattern {want}",
    "minLength": "Enter at least {want} character{s}",
    "maxLength": "Enter at most {want} character{s}",
    "minimum": "Must be {want} or more",
    "maximum": "Must be {want} or less",
    "exclusiveMinimum": "Must be more than {want}",
    "exclusiveMaximum": "Must be less than {want}",
    "multipleOf": "Must be a multiple of {want}",
    "minItems": "Choose at least {want}",
    "maxItems": "Choose at most {want}",
    "uniqueItems": "Each item may appear once",
}


def _message(error: jsonschema.ValidationError, spec: FieldSpec | None) -> str:
    """A jsonschema error as a person reads it; never with the value (it may be a secret)."""
    v, want = error.validator, error.validator_value
    simple = _SIMPLE_MESSAGES.get(str(v))
    if simple is not None:
        return simple.format(want=want, s="" if want == 1 else "s")
    if v == "enum":
        labels = [c.label for c in spec.field.choices] if spec and spec.field.choices else [_text(x) for x in (want if isinstance(want, list) else [])]
        return "Choose one of: " + ", ".join(labels[:12]) + ("…" if len(labels) > 12 else "")
    if v == "const":
        return f"Must be {_text(want)}"
    if v == "type":
        return f"Must be {'an' if str(want)[0] in 'aeiou' else 'a'} {want}"
    if v == "format":
        return f"Must be a valid {want}"
    if v in ("oneOf", "anyOf"):
        return "Does not match any of the allowed choices"
    if v == "not":
        return "Is not allowed"
    return f"Is not valid ({v})"


def _schema_errors(schema: Mapping[str, Any], values: Mapping[str, Any], specs: Sequence[FieldSpec]
                   ) -> list[FieldError]:
    by_path = {s.path: s for s in specs}
    names = [s.name for s in specs]
    out: list[FieldError] = []
    try:
        validator = jsonschema.Draft7Validator(_plain_schema(schema), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
        errors = sorted(validator.iter_errors(values), key=lambda e: [str(p) for p in e.absolute_path])
    except jsonschema.SchemaError as exc:
        return [FieldError(field="", message=f"The template's parameters are not valid JSON Schema ({exc.message})")]
    for error in errors:
        path = tuple(str(p) for p in error.absolute_path)
        if error.validator == "required":
            for name in error.validator_value:
                if isinstance(error.instance, Mapping) and name not in error.instance:
                    out.append(FieldError(field=".".join((*path, str(name))), message="Required"))
            continue
        if error.validator == "dependencies":
            continue  # a property dependency's missing field: resolved into "required" already
        # an error inside an array (an item) belongs to the array's field
        while path and path not in by_path and path[:-1]:
            path = path[:-1]
        spec = by_path.get(path)
        field = ".".join(path) if spec else ""
        out.append(FieldError(field=field, message=_message(error, spec)))
    # each message once, in the order the fields are shown (the page's own errors first)
    unique = list(dict.fromkeys(out))
    order = {name: i for i, name in enumerate(names)}
    return sorted(unique, key=lambda e: order.get(e.field, -1))


def _picker_errors(spec: FieldSpec, value: Any, known: Callable[[str], bool] | None) -> list[str]:
    if value is None:
        return []
    opts = spec.options
    picker = spec.picker
    if picker == "EntityNamePicker":
        if not isinstance(value, str) or len(value) > 63 or not _ENTITY_NAME.match(value):
            return ["Must start and end with a letter or digit and hold only letters, digits, hyphens, underscores "
                    "and periods, at most 63 characters"]
    elif spec.field.type is FieldType.ENTITY:
        if not isinstance(value, str):
            return ["Choose an entity"]
        try:
            ref = parse_ref(value)
        except RefParseError:
            return ["Must be an entity reference such as group:default/team-a"]
        kinds = [k.lower() for k in spec.field.kinds]
        if kinds and ref.kind.lower() not in kinds:
            return [f"Must be a {' or '.join(spec.field.kinds)} (this is a {ref.kind})"]
        strict = opts.get("allowArbitraryValues") is False or picker == "OwnedEntityPicker"
        key = f"{ref.kind}:{ref.namespace}/{ref.name}".lower()
        if strict and known is not None and not known(key):
            return [f"{value} is not in the catalog"]
    elif picker == "EntityTagsPicker":
        bad = [t for t in value if not isinstance(t, str) or len(t) > 63 or not TAG.match(t)] \
            if isinstance(value, list) else [value]
        if bad:
            return [f"Tag {str(bad[0])[:63]!r} is not valid: tags are lower-case letters, digits and : + #, "
                    "in words joined by single hyphens, at most 63 characters"]
    elif picker == "RepoUrlPicker":
        return _repo_errors(value, spec)
    return []


def _repo_errors(value: Any, spec: FieldSpec) -> list[str]:
    """Backstage's repoPickerValidation, plus the picker's allowedHosts/allowedOwners/allowedRepos."""
    if not isinstance(value, str):
        return ["Enter a repository location"]
    host, _, query = value.partition("?")
    if not host or not re.fullmatch(r"[A-Za-z0-9.-]+(:\d+)?", host):
        return ["Incomplete repository location provided, host not provided (write it as "
                "github.com?owner=<owner>&repo=<repo>)"]
    params = urllib.parse.parse_qs(query)
    owner = (params.get("owner") or params.get("organization") or params.get("workspace") or [""])[0]
    repo = (params.get("repo") or [""])[0]
    problems = []
    hosts = spec.field.hosts
    if hosts and host.lower() not in [h.lower() for h in hosts]:
        problems.append(f"Host {host} is not allowed here (allowed: {', '.join(hosts)})")
    if not owner:
        problems.append("Incomplete repository location provided, owner not provided")
    elif not _OWNER.match(owner):
        problems.append("The owner may hold only letters, digits, '-', '_', '.' (and '/' between groups)")
    if not repo:
        problems.append("Incomplete repository location provided, repo not provided")
    elif not _REPO.match(repo) or repo in (".", ".."):
        problems.append("The repository name may hold only letters, digits, '-', '_' and '.'")
    opts = spec.options
    allowed_owners = opts.get("allowedOwners")
    if owner and isinstance(allowed_owners, list) and allowed_owners and owner not in [str(o) for o in allowed_owners]:
        problems.append(f"Owner {owner} is not allowed here (allowed: {', '.join(str(o) for o in allowed_owners)})")
    allowed_repos = opts.get("allowedRepos")
    if repo and isinstance(allowed_repos, list) and allowed_repos and repo not in [str(r) for r in allowed_repos]:
        problems.append(f"Repository {repo} is not allowed here (allowed: {', '.join(str(r) for r in allowed_repos)})")
    return problems


def validate_page(page: Mapping[str, Any], values: Mapping[str, Any], *, hosts: Sequence[str] = ("github.com",),
                  known: Callable[[str], bool] | None = None) -> list[FieldError]:
    """Every problem with one page's values: its (resolved) JSON Schema, then the pickers' rules."""
    try:
        specs = field_specs(page, values, hosts=hosts)
    except FormBuildError as exc:
        return [FieldError(field="", message=str(exc))]
    resolved = _resolved_deep(page, values)
    mine = values_of_page(page, values, hosts=hosts)
    errors = _schema_errors(resolved, mine, specs)
    if not errors:  # what resolving cannot attribute to one field (a oneOf no branch of which fits)
        errors = _schema_errors(page, mine, specs)
    flagged = {e.field for e in errors}
    for spec in specs:
        if spec.name in flagged:
            continue
        for message in _picker_errors(spec, get_path(values, spec.path), known):
            errors.append(FieldError(field=spec.name, message=message))
    order = {s.name: i for i, s in enumerate(specs)}
    return sorted(errors, key=lambda e: order.get(e.field, -1))


def _resolved_deep(schema: Mapping[str, Any], values: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    resolved = resolve(schema, values)
    for key, sub in list(resolved["properties"].items()):
        if _type_of(sub) == "object" and not sub.get("ui:field") and depth < 16:
            inner = values.get(key)
            resolved["properties"][key] = _resolved_deep(sub, inner if isinstance(inner, Mapping) else {}, depth + 1)
    return resolved


def validate(template: TemplateDef, values: Mapping[str, Any], page: int | None = None, *,
             hosts: Sequence[str] = ("github.com",), known: Callable[[str], bool] | None = None) -> list[FieldError]:
    """Every problem with ``values`` (all pages, or page ``page``); ``known`` says whether an entity
    ref is in the catalog (for pickers that allow only catalog entities)."""
    problems = [FieldError(field="", message=f"This template cannot be shown: {p}") for p in unsupported(template)]
    if problems:
        return problems
    pages = range(len(template.parameters)) if page is None else [page]
    out: list[FieldError] = []
    for i in pages:
        out.extend(validate_page(template.parameters[i], values, hosts=hosts, known=known))
    return out


# --- showing values back -----------------------------------------------------------------------------------


def mask_secret(value: str) -> str:
    """What the parameter of a Secret field holds (Backstage's SecretInput): one ``*`` per character."""
    return "*" * len(value)


def is_secret_mask(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and set(value) == {"*"}


def display_value(spec: FieldSpec, value: Any) -> str:
    """A value as a person reads it on the review page (secrets and passwords masked)."""
    f = spec.field
    if f.type is FieldType.PASSWORD or spec.secret or _review_mask(spec):
        return "******"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if f.type is FieldType.CHOICE:
        return next((c.label for c in f.choices if c.value == _text(value)), _text(value))
    if f.type is FieldType.MULTI_CHOICE and isinstance(value, list):
        labels = {c.value: c.label for c in f.choices}
        return ", ".join(labels.get(_text(v), _text(v)) for v in value)
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return _text(value)


def _review_options(spec: FieldSpec) -> Mapping[str, Any]:
    backstage = spec.schema.get("ui:backstage")
    review = backstage.get("review") if isinstance(backstage, Mapping) else None
    return review if isinstance(review, Mapping) else {}


def _review_mask(spec: FieldSpec) -> bool:
    return bool(_review_options(spec).get("mask"))


def review_pairs(template: TemplateDef, values: Mapping[str, Any], *, hosts: Sequence[str] = ("github.com",)
                 ) -> tuple[tuple[str, str], ...]:
    """(label, value) for every shown field with a value, page by page, as the review step lists them."""
    pairs = []
    for page in template.parameters:
        for spec in field_specs(page, values, hosts=hosts):
            value = get_path(values, spec.path)
            if spec.hidden or _review_options(spec).get("show") is False or value is None:
                continue
            pairs.append((spec.field.label, display_value(spec, value)))
    return tuple(pairs)


def specs_by_name(template: TemplateDef, values: Mapping[str, Any], pages: Iterable[int] | None = None, *,
                  hosts: Sequence[str] = ("github.com",)) -> dict[str, FieldSpec]:
    out: dict[str, FieldSpec] = {}
    for i in pages if pages is not None else range(len(template.parameters)):
        for spec in field_specs(template.parameters[i], values, hosts=hosts):
            out[spec.name] = spec
    return out
