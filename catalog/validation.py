"""Entity validation, rule for rule as Backstage's catalog does it.

Order (as in ``@backstage/plugin-catalog-backend``):
1. envelope: ``apiVersion``, ``kind`` and ``metadata.name`` present;
2. policies: no foreign root fields, field formats (name, namespace, kind,
   apiVersion, labels, annotations, tags, links), the ``Entity`` JSON schema;
3. kind: the built-in kind schemas (Backstage's own JSON schemas, shipped in
   ``catalog/schemas``). A kind or apiVersion no schema knows is refused as
   Backstage refuses it ("No processor recognized ...").

``validate`` returns a ``CatalogError`` or ``None``; it never raises.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any, Callable

import fastjsonschema

from .model import CatalogError

__all__ = [
    "ADR_HINT",
    "is_valid_api_version",
    "is_valid_kind",
    "is_valid_namespace",
    "is_valid_object_name",
    "is_valid_string",
    "is_valid_tag",
    "is_valid_url",
    "validate",
]

ADR_HINT = (
    "To learn more about catalog file format, visit: "
    "https://github.com/backstage/backstage/blob/master/docs/architecture-decisions/"
    "adr002-default-catalog-file-format.md"
)

#: Backstage's NoForeignRootFieldsEntityPolicy: an entity as written has these root fields only.
#: ``relations`` and ``status`` belong to an entity the catalog serves, never to one it reads.
_ROOT_FIELDS = ("apiVersion", "kind", "metadata", "spec")
#: matched with fullmatch: Python's ``$`` also matches before a final newline (JavaScript's does not)
_OBJECT_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_KIND = re.compile(r"^[a-zA-Z][a-z0-9A-Z]*$")
_API_VERSION_SUFFIX = re.compile(r"^[a-z0-9A-Z]+$")
_TAG = re.compile(r"^[a-z0-9:+#]+(-[a-z0-9:+#]+)*$")


def is_valid_object_name(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 63 and bool(_OBJECT_NAME.fullmatch(value))


def is_valid_dns_label(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 63 and bool(_DNS_LABEL.fullmatch(value))


is_valid_namespace = is_valid_dns_label


def is_valid_dns_subdomain(value: object) -> bool:
    return (
        isinstance(value, str)
        and 1 <= len(value) <= 253
        and all(is_valid_dns_label(part) for part in value.split("."))
    )


def _prefix_and_or_suffix(
    value: object, prefix_ok: Callable[[object], bool], suffix_ok: Callable[[object], bool]
) -> bool:
    if not isinstance(value, str):
        return False
    parts = value.split("/")
    if len(parts) == 1:
        return suffix_ok(parts[0])
    if len(parts) == 2:
        return prefix_ok(parts[0]) and suffix_ok(parts[1])
    return False


@lru_cache(maxsize=256)
def _api_version_cached(value: str) -> bool:
    return _prefix_and_or_suffix(
        value,
        is_valid_dns_subdomain,
        lambda s: isinstance(s, str) and 1 <= len(s) <= 63 and bool(_API_VERSION_SUFFIX.fullmatch(s)),
    )


def is_valid_api_version(value: object) -> bool:
    return isinstance(value, str) and _api_version_cached(value)


def is_valid_kind(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 63 and bool(_KIND.fullmatch(value))


@lru_cache(maxsize=4096)
def _valid_key_cached(value: str) -> bool:
    return _prefix_and_or_suffix(value, is_valid_dns_subdomain, is_valid_object_name)


def is_valid_key(value: object) -> bool:
    if isinstance(value, str):
        return _valid_key_cached(value)
    return _prefix_and_or_suffix(value, is_valid_dns_subdomain, is_valid_object_name)


def is_valid_label_value(value: object) -> bool:
    return value == "" or is_valid_object_name(value)


def is_valid_string(value: object) -> bool:
    """Backstage's ``CommonValidatorFunctions.isValidString``: a string with something besides
    whitespace in it (JavaScript's ``trim`` strips the same characters as Python's ``strip``
    but for a few: close enough for a title)."""
    return isinstance(value, str) and bool(value.strip())


#: schemes the WHATWG URL standard treats as "special": they need a host (file excepted)
_SPECIAL_SCHEMES = frozenset({"ftp", "http", "https", "ws", "wss"})
_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
#: code points a host may not hold (WHATWG "forbidden domain code points", without "%", which
#: percent-decoding turns into something else first, and with the C0 controls and space)
_FORBIDDEN_HOST = re.compile(r"[\x00-\x20#/:<>?@\[\\\]^|\x7f]")


def is_valid_url(value: object) -> bool:
    """Backstage's ``CommonValidatorFunctions.isValidUrl``: ``new URL(value)`` succeeds.

    That is: after the C0 controls and spaces at both ends (and every tab and newline) are
    dropped, a scheme and ``:``; for the special schemes (http, https, ws, wss, ftp) a host that
    is not empty and holds no forbidden character, and a port of at most 65535 if one is given.
    Other schemes (``mailto:``, ``xyz://``) need nothing more. An approximation of the WHATWG
    parser that agrees with it on Backstage's own test cases
    (``packages/catalog-model/src/validation/CommonValidatorFunctions.test.ts``).
    """
    if not isinstance(value, str):
        return False
    text = value.strip(_C0_AND_SPACE).replace("\t", "").replace("\n", "").replace("\r", "")
    scheme = _SCHEME.match(text)
    if scheme is None:
        return False
    name = scheme.group()[:-1].lower()
    if name == "file" or name not in _SPECIAL_SCHEMES:
        return True
    rest = text[scheme.end():].replace("\\", "/").lstrip("/")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    hostport = authority.rpartition("@")[2]
    if hostport.startswith("["):  # an IPv6 address
        end = hostport.find("]")
        if end == -1 or not re.fullmatch(r"[0-9A-Fa-f:.]+", hostport[1:end]):
            return False
        host, port = hostport[1:end], hostport[end + 1:]
        if port and not port.startswith(":"):
            return False
        port = port[1:]
    else:
        host, _, port = hostport.partition(":")
        if not host or _FORBIDDEN_HOST.search(host):
            return False
    return not port or (port.isascii() and port.isdigit() and int(port) <= 65535)


def is_valid_tag(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 63 and bool(_TAG.fullmatch(value))


_EXPECT_NAME = "a string that is sequences of [a-zA-Z0-9] separated by any of [-_.], at most 63 characters in total"
_EXPECT_DNS = "a string that is sequences of [a-z0-9] separated by [-], at most 63 characters in total"
_EXPECT_KEY = "a valid prefix and/or suffix"
_EXPECT_TAG = "a string that is sequences of [a-z0-9+#] separated by [-], at most 63 characters in total"
_EXPECT_KIND = "a string that is a sequence of [a-zA-Z][a-z0-9A-Z], at most 63 characters in total"
_EXPECT_TEXT = "a non empty string"
_EXPECT_URL = "a string that is a valid url"


def _bad(field: str, value: object, expectation: str) -> str:
    shown = value if isinstance(value, str) else json.dumps(value, default=str)
    return f'"{field}" is not valid; expected {expectation} but found "{shown}". {ADR_HINT}'


def _field_formats(doc: dict[str, Any]) -> str | None:
    """Backstage's FieldFormatEntityPolicy."""
    if not is_valid_api_version(doc["apiVersion"]):
        return _bad("apiVersion", doc["apiVersion"], _EXPECT_KEY)
    if not is_valid_kind(doc["kind"]):
        return _bad("kind", doc["kind"], _EXPECT_KIND)
    meta = doc["metadata"]
    if not is_valid_object_name(meta.get("name")):
        return _bad("metadata.name", meta.get("name"), _EXPECT_NAME)
    if "namespace" in meta and not is_valid_namespace(meta["namespace"]):
        return _bad("metadata.namespace", meta["namespace"], _EXPECT_DNS)
    for section, value_ok, expect in (
        ("labels", is_valid_label_value, _EXPECT_NAME),
        ("annotations", lambda v: isinstance(v, str), "a string"),
    ):
        entries = meta.get(section)
        if entries is None:
            continue
        if not isinstance(entries, dict):
            return f'"metadata.{section}" must be a mapping of keys to strings. {ADR_HINT}'
        for key, value in entries.items():
            if not is_valid_key(key):
                return _bad(f"metadata.{section}.{key}", key, _EXPECT_KEY)
            if not value_ok(value):
                return _bad(f"metadata.{section}.{key}", value, expect)
    tags = meta.get("tags")
    if tags is not None:
        if not isinstance(tags, list):
            return f'"metadata.tags" must be a list of strings. {ADR_HINT}'
        for i, tag in enumerate(tags):
            if not is_valid_tag(tag):
                return _bad(f"metadata.tags.{i}", tag, _EXPECT_TAG)
    links = meta.get("links")
    if links is not None:
        if not isinstance(links, list):
            return f'"metadata.links" must be a list. {ADR_HINT}'
        for i, link in enumerate(links):
            if not isinstance(link, dict):
                return _bad(f"metadata.links.{i}", link, "an object with a url")
            url = link.get("url")
            if url is None:
                return f'"metadata.links.{i}.url" must have a value. {ADR_HINT}'
            if not is_valid_url(url):
                return _bad(f"metadata.links.{i}.url", url, _EXPECT_URL)
            if "title" in link and not is_valid_string(link["title"]):
                return _bad(f"metadata.links.{i}.title", link["title"], _EXPECT_TEXT)
            if "icon" in link and not is_valid_object_name(link["icon"]):
                return _bad(f"metadata.links.{i}.icon", link["icon"], _EXPECT_NAME)
            if "type" in link and (not isinstance(link["type"], str) or not link["type"]):
                return _bad(f"metadata.links.{i}.type", link["type"], _EXPECT_TEXT)
    return None


# --- JSON schemas ------------------------------------------------------------------------

_KIND_SCHEMAS = {
    "API": "kinds/API.v1alpha1.schema.json",
    "Component": "kinds/Component.v1alpha1.schema.json",
    "Domain": "kinds/Domain.v1alpha1.schema.json",
    "Group": "kinds/Group.v1alpha1.schema.json",
    "Location": "kinds/Location.v1alpha1.schema.json",
    "Resource": "kinds/Resource.v1alpha1.schema.json",
    "System": "kinds/System.v1alpha1.schema.json",
    "Template": "kinds/Template.v1beta3.schema.json",
    "User": "kinds/User.v1alpha1.schema.json",
}


def _load(name: str) -> dict[str, Any]:
    text = resources.files("callboard.catalog").joinpath("schemas", name).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@lru_cache(maxsize=None)
def _library() -> dict[str, dict[str, Any]]:
    """Schemas by ``$id``, the way Backstage's ajv instance knows them."""
    lib: dict[str, dict[str, Any]] = {}
    for name in ("Entity.schema.json", "EntityMeta.schema.json", "shared/common.schema.json"):
        schema = _load(name)
        lib[schema["$id"]] = schema
    return lib


def _resolve(ref: str, current: str) -> tuple[dict[str, Any], str]:
    """Find the schema a ``$ref`` names: ``Entity``, ``common#relation`` or ``#error``."""
    target_id, _, anchor = ref.partition("#")
    target_id = target_id or current
    schema = _library()[target_id]
    if not anchor:
        return schema, target_id
    for value in schema.get("definitions", {}).values():
        if isinstance(value, dict) and value.get("$id") == "#" + anchor:
            return value, target_id
    raise KeyError(ref)


def _inline(node: Any, current: str) -> Any:
    """Replace every ``$ref`` by the schema it names (these schemas are not recursive)."""
    if isinstance(node, list):
        return [_inline(x, current) for x in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        target, target_id = _resolve(ref, current)
        return _inline(target, target_id)
    return {k: _inline(v, current) for k, v in node.items() if k not in ("$id", "$schema", "examples")}


@lru_cache(maxsize=None)
def _validator(kind: str) -> Callable[[Any], Any]:
    if kind == "Entity":
        schema = _library()["Entity"]
    else:
        schema = _load(_KIND_SCHEMAS[kind])
    return fastjsonschema.compile(_inline(schema, "Entity"))


def _schema_message(exc: fastjsonschema.JsonSchemaValueException) -> tuple[str, bool]:
    """(Backstage-style message, soft) — soft when only kind/apiVersion enums failed."""
    path = "/" + "/".join(str(p) for p in (exc.path or [])[1:])
    path = "<root>" if path == "/" else path
    if exc.rule == "required" and isinstance(exc.value, dict):
        missing = [k for k in (exc.rule_definition or []) if k not in exc.value]
        prop = missing[0] if missing else "?"
        return f"{path} must have required property '{prop}' - missingProperty: {prop}", False
    if exc.rule == "enum" and path in ("/kind", "/apiVersion"):
        return f"{path} must be equal to one of the allowed values", True
    detail = exc.message.replace("data.", "/").replace("data", "<root>", 1)
    return f"{path} {detail.split(' ', 1)[-1] if detail.startswith(path) else detail}", False


def validate(doc: dict[str, Any], *, file: str, line: int | None = None, location: str | None = None,
             entity: str | None = None) -> CatalogError | None:
    """Validate one entity document read from ``file`` at ``line``; return why it is invalid
    (naming ``entity``, the ref it seems to have), or None."""
    message = _problem(doc)
    if message is None:
        return None
    return CatalogError(file=file, line=line, message=message, entity=entity, location=location)


def _problem(doc: dict[str, Any]) -> str | None:
    """The first rule ``doc`` breaks, in Backstage's words, or None."""
    for key in ("apiVersion", "kind"):
        value = doc.get(key)
        if not isinstance(value, str) or not value:
            return f'Entity is missing "{key}"' if value in (None, "") else f'"{key}" must be a string'
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        return 'Entity is missing "metadata"' if meta is None else '"metadata" must be a mapping'
    name = meta.get("name")
    if name is None or name == "":
        return 'Entity is missing "metadata.name"'
    for key in doc:
        if key not in _ROOT_FIELDS:
            return _foreign_root_field(key)
    problem = _field_formats(doc)
    if problem:
        return problem
    kind = doc["kind"]
    if kind not in _KIND_SCHEMAS:
        # the kind schemas include the Entity schema (allOf); only unknown kinds need it alone
        try:
            _validator("Entity")(doc)
        except fastjsonschema.JsonSchemaValueException as exc:
            return _schema_message(exc)[0]
        return _unrecognized(doc)
    try:
        _validator(kind)(doc)
    except fastjsonschema.JsonSchemaValueException as exc:
        message, soft = _schema_message(exc)
        if soft:
            return _unrecognized(doc)
        return message
    return None


def _foreign_root_field(key: object) -> str:
    """Backstage's ``Unknown field <key>``, saying what is allowed and, for the two fields the
    catalog itself writes, why they may not be written."""
    shown = key if isinstance(key, str) else json.dumps(key, default=str)
    why = ""
    if key in ("relations", "status"):
        why = f" ({key} are computed by the catalog when it serves an entity; a catalog file may not set them)"
    return f'Unknown field {shown}: an entity has only the root fields apiVersion, kind, metadata and spec{why}'


def _unrecognized(doc: dict[str, Any]) -> str:
    meta = doc["metadata"]
    ref = f"{doc['kind'].lower()}:{meta.get('namespace', 'default')}/{meta['name']}"
    known = ", ".join(_KIND_SCHEMAS)
    hint = ""
    for k in _KIND_SCHEMAS:
        if k.lower() == str(doc["kind"]).lower() and k != doc["kind"]:
            hint = f' (kinds are case-sensitive: did you mean "{k}"?)'
    return (
        f"No processor recognized the entity {ref} as valid, possibly caused by a foreign kind "
        f'or apiVersion: kind "{doc["kind"]}", apiVersion "{doc["apiVersion"]}"{hint}. '
        f"Known kinds: {known}"
    )
