"""``catalog:write``: writes an entity as ``catalog-info.yaml`` (or ``filePath``) in the workspace,
annotated with the template it came from, in the YAML style Backstage's ``yaml.stringify`` writes
(block style, two-space indent, plain scalars where they read back the same, long plain text
folded at 80 columns)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from ..expressions import js_number
from ..paths import safe_child
from .api import Action, ActionContext, ActionError, in_thread

__all__ = ["ACTIONS", "CATALOG_WRITE", "yaml_stringify", "SOURCE_TEMPLATE"]

SOURCE_TEMPLATE = "backstage.io/source-template"
_LINE_WIDTH = 80
_MIN_CONTENT = 20

_RESERVED = re.compile(
    r"^(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE"
    r"|[-+]?(?:0|[1-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|[-+]?\.[0-9]+(?:[eE][-+]?[0-9]+)?"
    r"|0x[0-9a-fA-F]+|0o[0-7]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|[-+]?[0-9][0-9_]*)$")


def _plain_ok(text: str) -> bool:
    if not text or text != text.strip() or "\n" in text:
        return False
    if _RESERVED.match(text):
        return False
    if text[0] in "!&*|>'\"%@`#,[]{}" or (text[0] in "-?:" and (len(text) == 1 or text[1] == " ")):
        return False
    if ": " in text or " #" in text or text.endswith(":"):
        return False
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in "\ufeff" for c in text):
        return False
    return True


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _fold(text: str, indent: int, first_width: int) -> str:
    """A plain scalar folded at spaces so lines stay within 80 columns (continuations indented)."""
    if first_width + len(text) <= _LINE_WIDTH:
        return text
    words = text.split(" ")
    if any(w == "" for w in words):  # double spaces would change meaning when folded
        return text
    lines: list[str] = []
    current = ""
    width = max(_MIN_CONTENT, _LINE_WIDTH - first_width)
    for word in words:
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
            width = max(_MIN_CONTENT, _LINE_WIDTH - indent)
        else:
            current = f"{current} {word}" if current else word
    lines.append(current)
    return ("\n" + " " * indent).join(lines)


def _scalar(value: Any, indent: int, first_width: int) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            return ".nan"
        if isinstance(value, float) and math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return js_number(value)
    text = str(value)
    if "\n" in text and text.strip() and not any(ord(c) < 0x20 and c not in "\n\t" for c in text):
        chomp = "" if text.endswith("\n") and not text.endswith("\n\n") else ("+" if text.endswith("\n") else "-")
        body = text[:-1] if text.endswith("\n") and chomp == "" else text
        if chomp == "+":
            body = text[:-1]
        pad = " " * indent
        lines = [pad + line if line else "" for line in body.split("\n")]
        indicator = str(indent) if text[:1] == " " else ""
        return f"|{indicator}{chomp}\n" + "\n".join(lines)
    if _plain_ok(text):
        return _fold(text, indent, first_width)
    return _quoted(text)


def _key(key: Any) -> str:
    text = str(key)
    return text if _plain_ok(text) else _quoted(text)


def _block(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            head = f"{pad}{_key(k)}:"
            if isinstance(v, Mapping) and v:
                lines.append(head)
                lines.extend(_block(v, indent + 2))
            elif isinstance(v, list) and v:
                lines.append(head)
                lines.extend(_block(v, indent + 2))
            elif isinstance(v, Mapping):
                lines.append(head + " {}")
            elif isinstance(v, list):
                lines.append(head + " []")
            else:
                lines.append(head + " " + _scalar(v, indent + 2, len(head) + 1))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (Mapping, list)) and item:
                inner = _block(item, indent + 2)
                inner[0] = pad + "- " + inner[0][indent + 2:]
                lines.extend(inner)
            elif isinstance(item, Mapping):
                lines.append(pad + "- {}")
            elif isinstance(item, list):
                lines.append(pad + "- []")
            else:
                lines.append(pad + "- " + _scalar(item, indent + 2, indent + 2))
    else:
        lines.append(pad + _scalar(value, indent, indent))
    return lines


def yaml_stringify(value: Any) -> str:
    """``value`` (JSON) as the ``yaml`` package's ``stringify`` writes it."""
    if isinstance(value, Mapping) and not value:
        return "{}\n"
    if isinstance(value, list) and not value:
        return "[]\n"
    return "\n".join(_block(value, 0)) + "\n"


def _write(ctx: ActionContext) -> None:
    entity = ctx.input.get("entity")
    if not isinstance(entity, Mapping):
        raise ActionError(f"{ctx.step_id}: input entity must be an object (the entity to write)")
    path = ctx.input.get("filePath") or "catalog-info.yaml"
    ctx.log(f"Writing {path}")
    target = safe_child(ctx.workspace, str(path), what=f"{ctx.step_id}: input filePath")
    doc = dict(entity)
    metadata = doc.get("metadata")
    if ctx.template.ref:
        meta = dict(metadata) if isinstance(metadata, Mapping) else {}
        annotations = meta.get("annotations")
        meta["annotations"] = {**(annotations if isinstance(annotations, Mapping) else {}),
                               SOURCE_TEMPLATE: ctx.template.ref}
        doc["metadata"] = meta
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml_stringify(doc), encoding="utf-8")


CATALOG_WRITE = Action(
    id="catalog:write", run=in_thread(_write), supports_dry_run=True,
    description="Writes the catalog-info.yaml for your template.",
    input_schema={"type": "object", "properties": {"filePath": {"type": "string"}, "entity": {"type": "object"}}},
)

ACTIONS = [CATALOG_WRITE]
