"""From bytes to processed entities: parse YAML safely, substitute placeholders,
validate, resolve refs, emit relations, hash.

Pure logic: the only I/O is through the ``PlaceholderReader`` a caller passes
in, so the same code runs in the sync's worker processes and in tests.
Every expected failure comes back as a ``CatalogError`` value naming file and
line; one bad document never affects its siblings.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Iterator, Protocol

import yaml

from .model import (
    DEFAULT_NAMESPACE,
    CatalogError,
    EntityRef,
    LocationTarget,
    ProcessedEntity,
    RefParseError,
    UnchangedDocument,
)
from .relations import emit_relations
from .urls import strip_userinfo
from .validation import validate

__all__ = [
    "MAX_DEPTH",
    "MAX_YAML_NODES",
    "ParsedDocument",
    "PlaceholderError",
    "PlaceholderReader",
    "decode",
    "parse_documents",
    "process_document",
    "process_text",
    "process_documents",
    "location_targets",
    "split_documents",
    "Document",
]

#: Documents whose alias-expanded size passes this are refused ("billion laughs").
MAX_YAML_NODES = 100_000
#: Lists and mappings nested deeper than this (the document itself is level 1) are refused, in
#: YAML and in ``$json``/``$yaml`` data alike: no catalog entity needs a tenth of it, and every
#: step that walks an entity (construction, validation, JSON) may then recurse without fear.
MAX_DEPTH = 64
#: An entity larger than this once serialised is refused (its file may be small: aliases).
MAX_ENTITY_BYTES = 4 * 1024 * 1024
#: What the placeholders of one document may read in all. Each read stops at max_file_bytes, but
#: one placeholder repeated by aliases would read that again for every alias before the entity
#: limit above could say no; an entity never needs more than a few times that limit.
MAX_PLACEHOLDER_BYTES = 4 * MAX_ENTITY_BYTES
#: Placeholders one document may read (aliases count each time): each may be a fetch.
MAX_PLACEHOLDERS = 1000

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class PlaceholderError(Exception):
    """A placeholder could not be read (plain message for the user)."""


class PlaceholderReader(Protocol):
    """Reads what ``$text``/``$json``/``$yaml`` point at, relative to the entity's file."""

    def read(self, target: str, base: str) -> str: ...


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    line: int
    doc: Any


def decode(data: bytes, file: str) -> str | CatalogError:
    """UTF-8 text, or an error naming the line of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return CatalogError(
            file=file,
            line=line,
            message=f"File is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8",
        )


def _expanded_size(node: yaml.Node, limit: int) -> tuple[int, int]:
    """(nodes with every alias expanded, distinct nodes); raises on recursion, and ``_TooDeep``
    where the expanded tree nests deeper than ``MAX_DEPTH`` (before recursing further)."""
    sizes: dict[int, tuple[int, int]] = {}  # id -> (expanded size, levels of lists/mappings in it)
    active: set[int] = set()

    def size(n: yaml.Node, depth: int) -> tuple[int, int]:
        nid = id(n)
        known = sizes.get(nid)
        if known is not None:
            if depth + known[1] - 1 > MAX_DEPTH:  # an alias placing a deep value deeper still
                raise _TooDeep(n)
            return known
        if nid in active:
            raise _RecursiveAlias()
        total, height = 1, 0
        if isinstance(n, (yaml.SequenceNode, yaml.MappingNode)):
            if depth > MAX_DEPTH:
                raise _TooDeep(n)
            active.add(nid)
            children = n.value if isinstance(n, yaml.SequenceNode) else [c for kv in n.value for c in kv]
            for child in children:
                child_size, child_height = size(child, depth + 1)
                total += child_size
                height = max(height, child_height)
                if total > limit:
                    break
            height += 1
            active.discard(nid)
        sizes[nid] = (total, height)
        return total, height

    return size(node, 1)[0], len(sizes)


class _RecursiveAlias(Exception):
    pass


class _TooDeep(Exception):
    """A list or mapping nested deeper than ``MAX_DEPTH``; carries the node, for its line."""

    def __init__(self, node: yaml.Node) -> None:
        super().__init__()
        self.node = node


def _too_deep() -> str:
    return (f"Lists and mappings are nested deeper than {MAX_DEPTH} levels; refused "
            "(no catalog entity needs that many: flatten the data)")


def _deeper_than_limit(node: yaml.Node) -> yaml.Node | None:
    """The first list or mapping below ``node`` nested deeper than ``MAX_DEPTH``, found without
    recursion (for documents the fast constructor hands back to PyYAML; they have no aliases)."""
    stack: list[tuple[yaml.Node, int]] = [(node, 1)]
    while stack:
        n, depth = stack.pop()
        if isinstance(n, yaml.SequenceNode):
            children = n.value
        elif isinstance(n, yaml.MappingNode):
            children = [c for kv in n.value for c in kv]
        else:
            continue
        if depth > MAX_DEPTH:
            return n
        stack.extend((c, depth + 1) for c in reversed(children))
    return None


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_SIMPLE_SCALARS = {
    "tag:yaml.org,2002:null": "construct_yaml_null",
    "tag:yaml.org,2002:bool": "construct_yaml_bool",
    "tag:yaml.org,2002:int": "construct_yaml_int",
    "tag:yaml.org,2002:float": "construct_yaml_float",
}


class _Fallback(Exception):
    """The fast constructor met something only PyYAML's full constructor handles."""


def _fast_construct(loader: Any, node: yaml.Node, depth: int = 1) -> Any:
    """PyYAML's safe construction for the plain shapes catalog files use, ~3x faster.

    Anything unusual (merge keys, timestamps, binary, sets, aliases) raises
    ``_Fallback`` and the document is built by PyYAML itself. Nesting is
    counted on the way down (``_TooDeep``), so the depth limit costs no extra pass.
    """
    tag = node.tag
    if tag == _STR:
        return node.value
    if tag == _MAP:
        if depth > MAX_DEPTH:
            raise _TooDeep(node)
        depth += 1
        out = {}
        for k, v in node.value:
            if k.tag != _STR or k.value == "<<":
                raise _Fallback()
            out[k.value] = _fast_construct(loader, v, depth)
        return out
    if tag == _SEQ:
        if depth > MAX_DEPTH:
            raise _TooDeep(node)
        depth += 1
        return [_fast_construct(loader, v, depth) for v in node.value]
    method = _SIMPLE_SCALARS.get(tag)
    if method is None:
        raise _Fallback()
    return getattr(loader, method)(node)


def _yaml_problem(exc: yaml.YAMLError, file: str, line_offset: int) -> CatalogError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 + line_offset if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    text = f"{context}, {problem}" if context else str(problem)
    if "maximum nesting depth" in text:  # libyaml's own cap (1,000 levels), met while scanning
        text = _too_deep()
    return CatalogError(file=file, line=line, message=f"Invalid YAML: {text}")


def parse_documents(
    text: str, file: str, line_offset: int = 0, max_nodes: int = MAX_YAML_NODES
) -> Iterator[ParsedDocument | CatalogError]:
    """Every document in a (multi-document) YAML text, or the error that stopped it.

    Uses libyaml when available. Aliases are checked before construction, so an
    alias bomb is refused in milliseconds instead of being expanded. Lists and
    mappings nested deeper than ``MAX_DEPTH`` are refused, with the line where
    the limit was passed; the documents after it are still read.
    """
    may_alias = "&" in text and "*" in text
    amplified = 0  # nodes added by aliases so far in this text: capped for the whole file
    loader = _Loader(text)
    try:
        while True:
            try:
                if not loader.check_node():
                    return
                node = loader.get_node()
            except yaml.YAMLError as exc:
                yield _yaml_problem(exc, file, line_offset)
                return
            except RecursionError:  # PyYAML's pure-Python composer (no libyaml) recurses
                line = getattr(loader, "line", None)
                yield CatalogError(file=file, line=None if line is None else line + 1 + line_offset,
                                   message=f"Invalid YAML: {_too_deep()}")
                return
            if node is None:
                continue
            line = node.start_mark.line + 1 + line_offset
            if may_alias:
                try:
                    expanded, distinct = _expanded_size(node, max_nodes)
                except _RecursiveAlias:
                    yield CatalogError(file=file, line=line, message="YAML document refers to itself through an alias; refused")
                    continue
                except _TooDeep as exc:
                    yield CatalogError(file=file, line=exc.node.start_mark.line + 1 + line_offset, message=_too_deep())
                    continue
                amplified += expanded - distinct
                if expanded > max_nodes or amplified > max_nodes:
                    yield CatalogError(
                        file=file,
                        line=line,
                        message=f"YAML document expands to more than {max_nodes:,} nodes through aliases "
                        "(a 'billion laughs' alias bomb?); refused",
                    )
                    continue
            try:
                if may_alias:
                    doc = loader.construct_document(node)
                else:
                    try:
                        doc = _fast_construct(loader, node)
                    except _Fallback:
                        deep = _deeper_than_limit(node)
                        if deep is not None:
                            raise _TooDeep(deep) from None
                        doc = loader.construct_document(node)
            except yaml.YAMLError as exc:
                yield _yaml_problem(exc, file, line_offset)
                continue
            except _TooDeep as exc:
                yield CatalogError(file=file, line=exc.node.start_mark.line + 1 + line_offset, message=_too_deep())
                continue
            yield ParsedDocument(line, doc)
    finally:
        loader.dispose()


# --- placeholders ------------------------------------------------------------------------

_PLACEHOLDERS = ("$text", "$json", "$yaml")
#: JSON strings (skipped whole: brackets inside them do not count) and brackets.
_JSON_NESTING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def _json_too_deep(text: str) -> int | None:
    """The line where JSON text nests deeper than ``MAX_DEPTH``, or None. Checked before
    ``json.loads``, whose recursion would otherwise decide (and say nothing of where)."""
    depth = 0
    for match in _JSON_NESTING.finditer(text):
        char = text[match.start()]
        if char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return text.count("\n", 0, match.start()) + 1
        elif char in "]}":
            depth -= 1
    return None


def _placeholders_too_big(target: str) -> str:
    return (f"Placeholders of this entity read more than {MAX_PLACEHOLDER_BYTES / 1e6:,.0f} MB in all (passed "
            f"reading {target}); refused. An entity may be {MAX_ENTITY_BYTES / 1e6:,.0f} MB at most: point fewer "
            "placeholders (or aliases of one) at smaller files")


def _too_many_placeholders() -> str:
    return (f"This entity reads more than {MAX_PLACEHOLDERS:,} placeholders (aliases of one count each time); "
            "refused. Read each file once")


@dataclass
class _Budgeted:
    """The reader one document's placeholders share, counting what they read
    (``MAX_PLACEHOLDER_BYTES``)."""

    reader: PlaceholderReader
    used: int = 0
    reads: int = 0

    def read(self, target: str, base: str) -> str:
        self.reads += 1
        if self.reads > MAX_PLACEHOLDERS:
            raise PlaceholderError(_too_many_placeholders())
        text = self.reader.read(target, base)
        self.used += len(text)
        if self.used > MAX_PLACEHOLDER_BYTES:
            raise PlaceholderError(_placeholders_too_big(target))
        return text


def _substitute(node: Any, file: str, reader: PlaceholderReader | None) -> Any:
    if isinstance(node, list):
        return [_substitute(x, file, reader) for x in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (key, value), = node.items()
        if key in _PLACEHOLDERS and isinstance(value, str):
            if reader is None:
                raise PlaceholderError(f"Placeholder {key} cannot be read here: {value}")
            content = reader.read(value, file)
            if key == "$text":
                return content
            if key == "$json":
                deep_line = _json_too_deep(content)
                if deep_line is not None:
                    raise PlaceholderError(f"Placeholder $json data at {value} (line {deep_line}): {_too_deep()}")
                try:
                    return json.loads(content)
                except RecursionError:
                    raise PlaceholderError(f"Placeholder $json data at {value}: {_too_deep()}") from None
                except ValueError as exc:
                    raise PlaceholderError(f"Placeholder $json failed to parse JSON data at {value}: {exc}") from exc
            docs = []
            for item in parse_documents(content, value):
                if isinstance(item, CatalogError):
                    where = f" (line {item.line})" if item.line else ""
                    raise PlaceholderError(f"Placeholder $yaml failed to parse YAML data at {value}{where}: {item.message}")
                docs.append(item.doc)
            return docs[0] if docs else None
    return {k: _substitute(v, file, reader) for k, v in node.items()}


def _has_placeholder(node: Any) -> bool:
    if isinstance(node, list):
        return any(_has_placeholder(x) for x in node)
    if isinstance(node, dict):
        if len(node) == 1 and next(iter(node)) in _PLACEHOLDERS:
            return True
        return any(_has_placeholder(v) for v in node.values())
    return False


# --- one document ------------------------------------------------------------------------


def _ref_of(doc: dict[str, Any]) -> str | None:
    """Best-effort ref for error messages, even for invalid documents."""
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not isinstance(doc.get("kind"), str):
        return None
    name, ns = meta.get("name"), meta.get("namespace", DEFAULT_NAMESPACE)
    if not isinstance(name, str) or not isinstance(ns, str):
        return None
    return f"{doc['kind']}:{ns}/{name}".lower()


#: a NUL in a JSON text (``\u0000`` not itself escaped): PostgreSQL cannot turn it into text,
#: so one such entity failed every JSON query over the catalog (the docs sync's, for one)
_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _has_nul(text: str) -> bool:
    # the substring test runs in C and almost never hits; the pattern (which tells an escaped
    # backslash followed by "u0000" from a NUL) only runs when it does
    return "\\u0000" in text and _NUL.search(text) is not None


def _holds_nul() -> str:
    return ("Entity holds a NUL character (\\0) in a key or value, which the database cannot store; refused. "
            "Remove it (YAML writes it as \"\\0\" or \"\\x00\")")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)


def process_document(
    doc: Any,
    *,
    file: str,
    line: int,
    location: str,
    origin: str | None = None,
    reader: PlaceholderReader | None = None,
    may_have_placeholders: bool = True,
    source_hash: str | None = None,
) -> ProcessedEntity | CatalogError:
    """Turn one parsed document into a ``ProcessedEntity`` or the reason it was refused."""

    def fail(message: str, ref: str | None = None, name: str = "InputError") -> CatalogError:
        return CatalogError(file=file, line=line, message=message, entity=ref, name=name, location=location)

    if not isinstance(doc, dict):
        got = "array" if isinstance(doc, list) else type(doc).__name__
        return fail(f"Expected a mapping (an entity) at the root of the document, got {got}")
    ref_hint = _ref_of(doc)
    raw = doc
    if may_have_placeholders and _has_placeholder(doc):
        try:
            doc = _substitute(doc, file, _Budgeted(reader) if reader is not None else None)
        except PlaceholderError as exc:
            return fail(str(exc), ref_hint)
    invalid = validate(doc, file=file, line=line, location=location, entity=ref_hint)
    if invalid is not None:
        return invalid
    meta = dict(doc["metadata"])
    namespace = meta.get("namespace") or DEFAULT_NAMESPACE
    meta["namespace"] = namespace
    ref = EntityRef(doc["kind"], namespace, meta["name"])
    annotations = dict(meta.get("annotations") or {})
    # shown in every answer: the location keys keep their credentials (the fetch needs them), these do not
    annotations.setdefault("backstage.io/managed-by-location", strip_userinfo(location))
    annotations.setdefault("backstage.io/managed-by-origin-location", strip_userinfo(origin or location))
    meta["annotations"] = annotations
    data = {**doc, "metadata": meta}
    spec: dict[str, Any] = data["spec"] if isinstance(data.get("spec"), dict) else {}
    try:
        relations = emit_relations(ref.kind, namespace, ref.key, spec)
    except RefParseError as exc:
        return fail(f"Processor BuiltinKindsEntityProcessor could not read {exc}", ref.key)
    targets: tuple[LocationTarget, ...] = ()
    if ref.kind == "Location":
        try:
            targets = location_targets(spec)
        except RefParseError as exc:
            return fail(str(exc), ref.key)
    data_json = _dumps(data)
    raw_json = None if raw is doc else _dumps(raw)
    if _has_nul(data_json) or (raw_json is not None and _has_nul(raw_json)):
        return fail(_holds_nul(), ref.key)
    if len(data_json) > MAX_ENTITY_BYTES:
        return fail(
            f"Entity is {len(data_json) / 1e6:,.1f} MB once read (aliases and placeholders expanded), over the "
            f"{MAX_ENTITY_BYTES / 1e6:,.0f} MB an entity may be; refused",
            ref.key,
        )
    digest = hashlib.sha1(data_json.encode("utf-8")).hexdigest()
    title = meta.get("title") if isinstance(meta.get("title"), str) else None
    return ProcessedEntity(
        ref=ref,
        title=title,
        data_json=data_json,
        raw_json=raw_json,
        relations=tuple((r.source, r.type, r.target) for r in relations),
        file=file,
        line=line,
        hash=digest,
        targets=targets,
        source_hash=source_hash,
    )


def location_targets(spec: dict[str, Any]) -> tuple[LocationTarget, ...]:
    loc_type = spec.get("type") or ""
    presence = spec.get("presence") or "required"
    if presence not in ("required", "optional"):
        raise RefParseError(f'spec.presence must be "required" or "optional", got "{presence}"')
    items: list[str] = []
    if isinstance(spec.get("target"), str):
        items.append(spec["target"])
    items.extend(t for t in spec.get("targets") or [] if isinstance(t, str))
    return tuple(LocationTarget(type=str(loc_type), target=t, presence=presence) for t in items)


def process_text(
    text: str,
    *,
    file: str,
    location: str,
    origin: str | None = None,
    reader: PlaceholderReader | None = None,
    line_offset: int = 0,
    max_nodes: int = MAX_YAML_NODES,
    source_hash_at: Callable[[int], str | None] | None = None,
) -> list[ProcessedEntity | CatalogError]:
    """Process every document of one YAML text (or one chunk of it).

    ``source_hash_at(line)`` gives the fingerprint of the document starting at a line.
    """
    out: list[ProcessedEntity | CatalogError] = []
    placeholders = "$text" in text or "$json" in text or "$yaml" in text
    for item in parse_documents(text, file, line_offset, max_nodes):
        if isinstance(item, CatalogError):
            out.append(CatalogError(file=item.file, line=item.line, message=item.message, location=location))
            continue
        if item.doc is None:
            continue
        out.append(
            process_document(
                item.doc,
                file=file,
                line=item.line,
                location=location,
                origin=origin,
                reader=reader,
                may_have_placeholders=placeholders,
                source_hash=source_hash_at(item.line) if source_hash_at else None,
            )
        )
    return out


# --- documents: the unit of change detection and error isolation -------------------------



def _constant(value: str) -> Callable[[int], str]:
    """A ``source_hash_at`` for one document: the same hash at every line."""
    return lambda _line: value


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML document's text within a file, where it starts, and its fingerprint."""

    text: str
    line: int  # 1-based line of the document's first line in the file
    source_hash: str
    content_line: int = 0  # where its content starts: the line an entity from it is reported at

    def __reduce__(self) -> tuple[Any, ...]:
        return (Document, (self.text, self.line, self.source_hash, self.content_line))


def _leading_lines(chunk: str) -> int:
    """Lines before the content: the ``---`` marker, blank lines and comments."""
    skipped = 0
    for raw in chunk.split("\n"):
        stripped = raw.strip()
        if stripped.startswith("---"):
            rest = stripped[3:].strip()
            if rest and not rest.startswith("#"):
                return skipped
        elif stripped and not stripped.startswith("#"):
            return skipped
        skipped += 1
    return skipped


def _line_starts(text: str, marker: str) -> list[int]:
    """0 and the offset of every line that starts with ``marker`` (``str.find``: a third of the time
    of a regex scan, and no long stretch without a thread switch when a sync splits in a thread)."""
    starts = [0]
    needle = "\n" + marker
    pos = text.find(needle)
    while pos >= 0:
        starts.append(pos + 1)
        pos = text.find(needle, pos + len(needle))
    return starts


def split_documents(text: str, origin: str = "") -> list[Document]:
    """Cut a YAML stream at its ``---`` lines.

    ``---`` at the start of a line always starts a document in YAML, so this
    is exact; a stream with ``%`` directives is kept whole.
    """
    if text.startswith("%") or "\n%" in text:
        starts = [0]
    else:
        starts = _line_starts(text, "---")
    docs: list[Document] = []
    line = 1
    seed = origin.encode("utf-8") + b"\0"
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        chunk = text[start:end]
        if chunk.strip():
            digest = hashlib.sha1(seed + chunk.encode("utf-8")).hexdigest()
            docs.append(Document(chunk, line, digest, line + _leading_lines(chunk)))
        line += chunk.count("\n")
    return docs


def process_documents(
    docs: list[Document],
    *,
    file: str,
    location: str,
    origin: str | None = None,
    reader: PlaceholderReader | None = None,
    known: Mapping[str, str] | None = None,
    max_nodes: int = MAX_YAML_NODES,
) -> list[ProcessedEntity | CatalogError | UnchangedDocument]:
    """Process consecutive documents of one file; each error stays with its own document.

    Documents whose fingerprint is in ``known`` (fingerprint -> entity key) are
    not parsed again. The rest are parsed as one stream (fast); if the stream
    breaks on a YAML error, the remaining documents are parsed one by one so the
    error is pinned to its own document and its neighbours are unaffected.
    """
    out: list[ProcessedEntity | CatalogError | UnchangedDocument] = []
    todo: list[Document] = []
    for doc in docs:
        key = known.get(doc.source_hash) if known else None
        if key is not None:
            out.append(UnchangedDocument(key=key, line=doc.content_line))
        else:
            todo.append(doc)
    if not todo:
        return out
    lines = [d.line for d in todo]

    def hash_at(line: int) -> str:
        return todo[max(bisect.bisect_right(lines, line) - 1, 0)].source_hash

    # fast path: consecutive documents as one stream
    runs: list[list[Document]] = []
    for doc in todo:
        if runs and runs[-1][-1].line + runs[-1][-1].text.count("\n") == doc.line:
            runs[-1].append(doc)
        else:
            runs.append([doc])
    for run in runs:
        text = "".join(d.text for d in run)
        try:
            items: list[ProcessedEntity | CatalogError] | None = process_text(
                text, file=file, location=location, origin=origin, reader=reader,
                line_offset=run[0].line - 1, max_nodes=max_nodes, source_hash_at=hash_at,
            )
        except (RecursionError, MemoryError):
            items = None  # one document exhausted something: find which, one at a time
        del text
        if items is not None and not any(
            isinstance(i, CatalogError) and i.entity is None and i.message.startswith("Invalid YAML") for i in items
        ):
            out.extend(items)
            continue
        # a YAML error breaks the stream: parse one document at a time
        del items
        for doc in run:
            try:
                out.extend(process_text(
                    doc.text, file=file, location=location, origin=origin, reader=reader,
                    line_offset=doc.line - 1, max_nodes=max_nodes, source_hash_at=_constant(doc.source_hash),
                ))
            except (RecursionError, MemoryError) as exc:
                out.append(CatalogError(file=file, line=doc.content_line, location=location, message=_exhausted(exc)))
    return out


def _exhausted(exc: BaseException) -> str:
    what = "stack" if isinstance(exc, RecursionError) else "memory"
    return (f"Reading this document ran out of {what} ({type(exc).__name__}); it is refused and the rest of "
            "the file is read. Is it nested very deeply, or very large once read?")
