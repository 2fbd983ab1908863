"""What a Software Template is to Callboard: its parameter pages, steps and output, read once from
the document (a catalog Template entity, a built-in under ``templates/``, or a ``template.yaml``
path), and who runs it.

Everything here is data from the template's author (untrusted): the loader checks shapes and says
what is wrong and where; nothing is evaluated here (expressions are rendered by the engine, in its
sandbox, when the template runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

__all__ = ["TemplateDef", "TemplateError", "Runner", "template_from_document"]

API_VERSION = "scaffolder.backstage.io/v1beta3"


class TemplateError(ValueError):
    """A template document that cannot be run; the message names what and where."""


@dataclass(frozen=True, slots=True)
class Runner:
    """Who runs a template: ``user.ref`` and ``user.entity`` in expressions (``None``: anonymous,
    ``user`` is ``{}`` as in Backstage without a signed-in user)."""

    ref: str | None = None  # user:default/ana
    entity: Mapping[str, Any] | None = None  # the catalog User document
    groups: tuple[str, ...] = ()  # group refs the person is a member of (pickers list them first)


@dataclass(frozen=True, slots=True)
class TemplateDef:
    """One template, ready to become forms and to run."""

    ref: str  # template:<namespace>/<name> (a file not in the catalog: template:default/<name>)
    name: str
    title: str
    description: str
    tags: tuple[str, ...]
    owner: str | None
    type: str | None
    parameters: tuple[Mapping[str, Any], ...]  # the pages, each a JSON Schema object with ui:* keys
    steps: tuple[Mapping[str, Any], ...]
    output: Mapping[str, Any]
    document: Mapping[str, Any] = field(repr=False)  # the whole document as read
    base_dir: Path | None = None  # the folder relative skeleton URLs are read from (None: not local)
    base_url: str | None = None  # the template's own URL when it was read from a repository


def template_from_document(doc: Mapping[str, Any], *, base_dir: Path | None = None, base_url: str | None = None,
                           where: str = "template") -> TemplateDef:
    """A ``TemplateDef`` from a Template document; ``TemplateError`` naming the field otherwise."""
    if not isinstance(doc, Mapping):
        raise TemplateError(f"{where}: a template is a YAML mapping")
    if doc.get("kind") != "Template":
        raise TemplateError(f"{where}: kind is {doc.get('kind')!r}, not Template")
    if doc.get("apiVersion") != API_VERSION:
        raise TemplateError(f"{where}: apiVersion {doc.get('apiVersion')!r} is not supported (only {API_VERSION})")
    metadata = doc.get("metadata")
    spec = doc.get("spec")
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
        raise TemplateError(f"{where}: metadata.name is missing")
    if not isinstance(spec, Mapping):
        raise TemplateError(f"{where}: spec is missing")
    name = str(metadata["name"])
    namespace = str(metadata.get("namespace") or "default")
    raw_params = spec.get("parameters", [])
    if isinstance(raw_params, Mapping):
        raw_params = [raw_params]  # Backstage accepts one page as a mapping
    if not isinstance(raw_params, list) or not all(isinstance(p, Mapping) for p in raw_params):
        raise TemplateError(f"{where}: spec.parameters must be a list of JSON Schema objects")
    steps = spec.get("steps", [])
    if not isinstance(steps, list) or not all(isinstance(s, Mapping) for s in steps):
        raise TemplateError(f"{where}: spec.steps must be a list of steps")
    for i, step in enumerate(steps):
        if not isinstance(step.get("action"), str) or not step["action"]:
            raise TemplateError(f"{where}: spec.steps[{i}] has no action")
    output = spec.get("output") or {}
    if not isinstance(output, Mapping):
        raise TemplateError(f"{where}: spec.output must be a mapping")
    tags = metadata.get("tags") or []
    return TemplateDef(
        ref=f"template:{namespace}/{name}".lower(),
        name=name,
        title=str(metadata.get("title") or name),
        description=str(metadata.get("description") or ""),
        tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
        owner=str(spec["owner"]) if isinstance(spec.get("owner"), str) else None,
        type=str(spec["type"]) if isinstance(spec.get("type"), str) else None,
        parameters=tuple(raw_params),
        steps=tuple(steps),
        output=output,
        document=doc,
        base_dir=base_dir,
        base_url=base_url,
    )
