"""Where templates come from: Template entities in the catalog, the built-in ``templates/`` folder
shipped with Callboard, and a path to a ``template.yaml`` (so an author can try one before
registering it).

A template that cannot be read is reported (``TemplateListing.errors``, naming the file or entity)
and left out; the others are still listed. A catalog template and a built-in with the same ref:
the catalog's wins (an organisation overrides a default by registering its own).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .model import TemplateDef, TemplateError, template_from_document

__all__ = ["TemplateListing", "builtin_templates_dir", "builtin_templates", "catalog_templates",
           "list_templates", "load_template_file", "find_template"]

_MAX_TEMPLATE_BYTES = 1_000_000


@dataclass(frozen=True, slots=True)
class TemplateListing:
    templates: tuple[TemplateDef, ...]
    errors: tuple[str, ...] = ()


def builtin_templates_dir() -> Path:
    """The ``templates/`` folder of the installed package."""
    return Path(str(resources.files("callboard.templates")))


def load_template_file(path: Path) -> TemplateDef:
    """The template in ``path`` (a ``template.yaml``, or a folder holding one); skeleton URLs are
    read relative to its folder. ``TemplateError`` naming the file otherwise."""
    file = path / "template.yaml" if path.is_dir() else path
    if not file.is_file():
        raise TemplateError(f"{file}: no such template file")
    if file.stat().st_size > _MAX_TEMPLATE_BYTES:
        raise TemplateError(f"{file}: larger than {_MAX_TEMPLATE_BYTES} bytes; not a template")
    try:
        docs = [d for d in yaml.safe_load_all(file.read_text(encoding="utf-8")) if d is not None]
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{file}: not valid YAML: {exc}") from None
    templates = [d for d in docs if isinstance(d, dict) and d.get("kind") == "Template"]
    if len(templates) != 1:
        found = "no Template document" if not templates else f"{len(templates)} Template documents"
        raise TemplateError(f"{file}: {found} (a template file holds exactly one)")
    return template_from_document(templates[0], base_dir=file.parent.resolve(), where=str(file))


def builtin_templates() -> TemplateListing:
    """The templates shipped in the package's ``templates/`` folder (one sub-folder each)."""
    root = builtin_templates_dir()
    found: list[TemplateDef] = []
    errors: list[str] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and (p / "template.yaml").is_file()):
        try:
            found.append(load_template_file(folder))
        except TemplateError as exc:
            errors.append(str(exc))
    return TemplateListing(tuple(found), tuple(errors))


def _base_dir(entity: Any) -> Path | None:
    file = getattr(entity, "file", None)
    if not file:
        return None
    path = Path(str(file))
    return path.parent.resolve() if path.is_file() else None


async def catalog_templates(catalog: Any) -> TemplateListing:
    """Template entities of a ``callboard.catalog.service.Catalog`` (its index must be loaded)."""
    keys = [k for k in catalog.index.keys() if k.startswith("template:")]
    entities = await catalog.get_many(keys)
    found: list[TemplateDef] = []
    errors: list[str] = []
    for key in keys:
        entity = entities.get(key)
        if entity is None:
            continue
        where = f"{key} ({entity.file}{':' + str(entity.line) if entity.line else ''})" if entity.file else key
        location = getattr(entity, "location", None)
        base_url = location if isinstance(location, str) and "://" in location else None
        try:
            found.append(template_from_document(entity.data, base_dir=_base_dir(entity), base_url=base_url,
                                                where=where))
        except TemplateError as exc:
            errors.append(str(exc))
    return TemplateListing(tuple(found), tuple(errors))


async def list_templates(catalog: Any = None, *, builtins: bool = True) -> TemplateListing:
    """The catalog's templates, then the built-ins not overridden by one of the same ref."""
    parts: list[TemplateListing] = []
    if catalog is not None:
        parts.append(await catalog_templates(catalog))
    if builtins:
        parts.append(builtin_templates())
    seen: set[str] = set()
    templates: list[TemplateDef] = []
    for part in parts:
        for template in part.templates:
            if template.ref not in seen:
                seen.add(template.ref)
                templates.append(template)
    return TemplateListing(tuple(templates), tuple(e for p in parts for e in p.errors))


def _matches(templates: Iterable[TemplateDef], wanted: str) -> list[TemplateDef]:
    w = wanted.strip().lower()
    if ":" in w or "/" in w:
        ref = w if w.startswith("template:") else f"template:{w}"
        if "/" not in ref:
            ref = ref.replace("template:", "template:default/", 1)
        return [t for t in templates if t.ref == ref]
    return [t for t in templates if t.name.lower() == w]


async def find_template(wanted: str, catalog: Any = None, *, builtins: bool = True) -> TemplateDef:
    """The template ``wanted`` names: a path to a ``template.yaml`` (or its folder), else a
    template's ref (``template:default/docs-site``) or name. ``TemplateError`` saying which exist."""
    path = Path(wanted).expanduser()
    if wanted.endswith((".yaml", ".yml")) or path.is_file() or (path.is_dir() and (path / "template.yaml").is_file()):
        return load_template_file(path)
    listing = await list_templates(catalog, builtins=builtins)
    found = _matches(listing.templates, wanted)
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise TemplateError(f"{wanted!r} names {len(found)} templates: "
                            f"{', '.join(t.ref for t in found)}; give the ref")
    names = ", ".join(sorted(t.name for t in listing.templates)) or "none"
    raise TemplateError(f"no template named {wanted!r} (templates: {names}; or give a path to a template.yaml)")
