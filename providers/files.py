"""The file source: catalog files on disk.

A path to a file registers that file as a location; a path to a directory
registers every ``catalog-info.yaml`` under it. Location targets and
``$text``/``$json``/``$yaml`` placeholders are read relative to the file that
names them, and never outside the registered catalog roots.

Catalog files are untrusted (a repository may hold anything), so every file this
source reads goes through ``read_regular_file``: symlinks resolved and kept
inside the catalog root, regular files only (a FIFO, ``/dev/zero`` or a socket
is refused, never waited on), and never more than ``max_file_bytes`` read,
whatever the file's size claims.

Big files are split at document boundaries and parsed on every core
(``ProcessPoolExecutor``); small ones are parsed in a thread, off the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import logging
import multiprocessing
import os
import re
import stat
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from callboard.catalog.globs import (
    GLOBSTAR,
    GlobPattern,
    expand_braces,
    has_magic,
    parse_pattern,
    segment_matches,
    url_glob_problem,
)
from callboard.catalog.model import CatalogError, LocationTarget, ProcessedEntity, UnchangedDocument
from callboard.catalog.process import (
    Document,
    ParsedDocument,
    PlaceholderError,
    decode,
    parse_documents,
    process_documents,
    split_documents,
)
from callboard.catalog.urls import strip_userinfo
from callboard.catalog.sync import LocationSpec, ReadOutcome, digest, fingerprint

from .api import Provider, ProviderContext

__all__ = [
    "DEFAULT_MAX_BYTES",
    "PROVIDER",
    "FileConfig",
    "FilePlaceholders",
    "FileSource",
    "GlobMatches",
    "Unreadable",
    "discover",
    "expand_glob",
    "read_regular_file",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
_PARALLEL_FROM = 4 * 1024 * 1024
_CHUNK_TARGET = 1024 * 1024
_SKIP_DIRS = {".git", "node_modules", ".venv", "venv", "__pycache__", "site", ".tox"}
_CATALOG_NAMES = ("catalog-info.yaml", "catalog-info.yml")
#: Reads after the first (which asks for the whole file at once) go in steps of this size.
_READ_CHUNK = 1024 * 1024


# --- reading one file: the only way this module reads a file ---------------------------------


@dataclass(frozen=True, slots=True)
class Unreadable:
    """Why a file was not read: a message that names it, and whether it simply is not there
    (an optional Location target may be absent)."""

    message: str
    missing: bool = False


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    )
    return next((name for test, name in kinds if test(mode)), "not a plain file")


def _limit(max_bytes: int) -> str:
    return f"{max_bytes / 1e6:,.0f} MB" if max_bytes >= 1_000_000 else f"{max_bytes:,}-byte"


def _size(size: int) -> str:
    return f"{size / 1e6:,.1f} MB" if size >= 1_000_000 else f"{size:,} bytes"


def _not_regular(name: str, mode: int) -> str:
    return f"{name} is not a regular file (it is {_kind(mode)}); only regular files are read"


def _too_big(name: str, size: int, max_bytes: int) -> str:
    return (f"{name} is {_size(size)}, over the {_limit(max_bytes)} limit (catalog.max_file_bytes); refused. "
            "Split it into several files or raise the limit.")


def _grew(name: str, claimed: int, max_bytes: int) -> str:
    return (f"{name} holds more than the {_limit(max_bytes)} limit (catalog.max_file_bytes) though its size "
            f"said {_size(claimed)} (a device, or a file growing while it is read); refused")


def _outside(name: str, real: Path, roots: Sequence[Path]) -> str:
    if _in_git(real, roots):
        return (f"{name} resolves to {real}, inside a .git folder; refused. A repository's .git is written by "
                "whoever cloned it (and may hold its credentials), so catalog files may not read it.")
    return (f"{name} resolves to {real}, outside the catalog root ({', '.join(map(str, roots))}); refused. "
            "Catalog files and what they read must lie inside the folder that was registered.")


def _nul(name: str) -> str:
    shown = name.replace("\0", "\\0")  # the NUL itself may not be stored or shown
    return f"{shown} holds a NUL character (\\0), which no file name can; refused"


def _cannot_read(name: str, exc: OSError) -> str:
    return f"cannot read {name}: {exc.strerror or exc}"


def _out_of_memory(name: str) -> str:
    return f"{name}: ran out of memory reading it (MemoryError); refused. Lower catalog.max_file_bytes or split the file."


def read_regular_file(
    path: Path, max_bytes: int, *, name: str | None = None, roots: Sequence[Path] | None = None
) -> bytes | Unreadable:
    """The bytes of the regular file at ``path`` (symlinks resolved), or why not.

    ``roots``: the resolved file must lie inside one of them, checked before anything looks at
    it (None: no check; the caller checked the path when it was registered). ``name`` is how
    messages name the file.
    A FIFO or device is refused on ``stat``, before it is opened; it is opened non-blocking
    and checked again on the descriptor, so one swapped in after the ``stat`` cannot hang the
    read either. At most ``max_bytes + 1`` bytes are ever read: a file that claims a small
    size and holds more is refused as too big.
    """
    shown = name or str(path)
    try:
        real = path.resolve()
    except RuntimeError:  # a symlink loop (Python < 3.13 says so this way)
        return Unreadable(f"{shown} is a symlink loop; refused")
    except OSError as exc:
        return Unreadable(_cannot_read(shown, exc))
    except ValueError:  # Python's answer to a NUL in a path, which no file name can hold
        return Unreadable(_nul(shown))
    if roots is not None and not _inside(real, roots):
        # not even a stat outside: whether something is there, and what, is not for the catalog to learn
        return Unreadable(_outside(shown, real, roots))
    try:
        before = os.stat(real)
    except FileNotFoundError:
        return Unreadable(f"{shown} does not exist", missing=True)
    except OSError as exc:
        return Unreadable(_cannot_read(shown, exc))
    if not stat.S_ISREG(before.st_mode):
        return Unreadable(_not_regular(shown, before.st_mode))
    if before.st_size > max_bytes:
        return Unreadable(_too_big(shown, before.st_size, max_bytes))
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return Unreadable(f"{shown} does not exist", missing=True)
    except OSError as exc:
        return Unreadable(_cannot_read(shown, exc))
    chunks: list[bytes] = []
    total = 0
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            return Unreadable(_not_regular(shown, opened.st_mode))
        if (opened.st_dev, opened.st_ino) != (before.st_dev, before.st_ino):
            return Unreadable(f"{shown} was replaced while it was being opened; refused (sync again)")
        step = min(opened.st_size, max_bytes) + 1  # a regular file: all of it in one read
        while total <= max_bytes:
            chunk = os.read(fd, min(step, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            step = _READ_CHUNK
    except OSError as exc:
        return Unreadable(_cannot_read(shown, exc))
    except MemoryError:
        return Unreadable(_out_of_memory(shown))
    finally:
        os.close(fd)
    if total > max_bytes:
        return Unreadable(_grew(shown, opened.st_size, max_bytes))
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


# --- discovery ---------------------------------------------------------------------------------


def _discovered(file: Path, root: Path) -> LocationSpec:
    """A catalog file found in a folder scan. One that is a symlink inside the root is
    registered at its real path (read once, relative paths from where it really is); one that
    leads outside keeps its own path, and reading it is refused with the reason."""
    try:
        real = file.resolve()
    except (OSError, RuntimeError):
        return LocationSpec(type="file", target=str(file))
    return LocationSpec(type="file", target=str(real if _inside(real, [root]) else file))


def _linked_folder(link: Path, root: Path) -> list[LocationSpec]:
    """A symlinked folder is not scanned: inside the root its real folder is scanned anyway;
    outside it, a catalog file in it is registered so that the sync reports it refused."""
    try:
        real = link.resolve()
    except (OSError, RuntimeError):
        return []
    if _inside(real, [root]):
        return []
    return [LocationSpec(type="file", target=str(link / n)) for n in _CATALOG_NAMES if os.path.lexists(link / n)]


def discover(path: str | os.PathLike[str]) -> list[LocationSpec] | CatalogError:
    """Root locations for one ``--catalog`` path: the path itself, or every ``catalog-info.yaml``
    under a folder but those of Software Template skeletons (see :func:`_skeletons`)."""
    p = Path(path).expanduser()
    try:
        p = p.resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        return CatalogError(
            file=str(path),
            name="NotFoundError",
            message=f"Catalog path {path} does not exist; pass a catalog-info.yaml file or a folder that holds some",
        )
    if p.is_file():
        return [LocationSpec(type="file", target=str(p))]
    if not p.is_dir():
        return CatalogError(
            file=str(path),
            message=_not_regular(f"Catalog path {path}", p.stat().st_mode)
            + "; pass a catalog-info.yaml file or a folder that holds some",
        )
    found: list[LocationSpec] = []
    templates: list[Path] = []  # files that may hold Template entities: their skeletons are skipped
    for dirpath, dirnames, filenames in os.walk(p):
        here = Path(dirpath)
        scanned = []
        for d in sorted(dirnames):
            if d in _SKIP_DIRS or d.startswith("."):
                continue
            if (here / d).is_symlink():  # os.walk does not follow it
                found.extend(_linked_folder(here / d, p))
            else:
                scanned.append(d)
        dirnames[:] = scanned
        for name in sorted(filenames):
            if name in _CATALOG_NAMES:
                found.append(_discovered(here / name, p))
            elif name in _TEMPLATE_NAMES:
                templates.append(here / name)
    skipped = _skeletons(found, templates, p)
    if skipped:
        found = [spec for spec in found if spec.target not in skipped]
        log.info("catalog_scan root=%s skipped_template_skeletons=%d first=%s", p, len(skipped), min(skipped))
    if not found:
        hint = (f" ({len(skipped)} found belong to Software Template skeletons, which are not catalog entities "
                "until the template runs)") if skipped else ""
        return CatalogError(
            file=str(p),
            name="NotFoundError",
            message=f"No catalog-info.yaml found under {p}{hint}; pass the file itself if it has another name",
        )
    return found


# --- Software Template skeletons in a folder scan -------------------------------------------------
#
# A repository of Software Templates holds, beside each template.yaml, a skeleton folder whose
# catalog-info.yaml is a Nunjucks template (``name: ${{ values.name | dump }}``): not an entity
# until the template runs. Backstage never reads it (nobody registers it); a folder scan would, and
# report the placeholder as a bad name. So the scan leaves out the folders a Template's fetch steps
# copy from (``fetch:template``, ``fetch:plain``, ``fetch:cookiecutter``, ... with a relative
# ``url``), and any catalog file whose name fields hold a template placeholder.

_TEMPLATE_NAMES = ("template.yaml", "template.yml")
#: what a scan reads of a file to decide (skeletons and templates are small)
_HEAD_BYTES = 256 * 1024
_TEMPLATE_KIND = re.compile(rb"^kind:[ \t]*[\"']?Template\b", re.MULTILINE)
#: a name field (kind, name, namespace) whose value holds ${{ }}, {{ }} or {% %}: Nunjucks,
#: cookiecutter or Jinja, as skeletons are written
_PLACEHOLDER_NAME = re.compile(rb"^[ \t]*(?:kind|name|namespace)[ \t]*:[^\n#]*(?:\$\{\{|\{\{|\{%)", re.MULTILINE)


def _head(path: Path) -> bytes | None:
    """The start of the regular file at ``path`` (never waiting on a FIFO), or None when it
    cannot be read here: not a skeleton then; the sync reads it and says what is wrong."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, _HEAD_BYTES)
    except (OSError, MemoryError):  # then the sync reads it, and reports why it could not
        return None
    finally:
        os.close(fd)


def _skeleton_folders(path: Path, head: bytes, root: Path) -> list[Path]:
    """The folders (or files) the Template entities in ``head`` fetch their skeletons from."""
    if not _TEMPLATE_KIND.search(head):
        return []
    text = head.decode("utf-8", "replace")
    out: list[Path] = []
    for doc in parse_documents(text, str(path)):
        if not isinstance(doc, ParsedDocument) or not isinstance(doc.doc, dict) or doc.doc.get("kind") != "Template":
            continue
        spec = doc.doc.get("spec")
        steps = spec.get("steps") if isinstance(spec, dict) else None
        for step in steps if isinstance(steps, list) else []:
            if not isinstance(step, dict) or not str(step.get("action", "")).startswith("fetch:"):
                continue
            inputs = step.get("input")
            url = inputs.get("url") if isinstance(inputs, dict) else None
            if not isinstance(url, str) or not url or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", url) or "${{" in url:
                continue
            try:
                target = (path.parent / url).resolve()
            except (OSError, RuntimeError, ValueError):
                continue
            if _inside(target, [root]):
                out.append(target)
    return out


def _skeletons(found: Sequence[LocationSpec], templates: Sequence[Path], root: Path) -> set[str]:
    """The targets of ``found`` that are Software Template skeleton files (blocking: the scan
    runs in a thread). Only files inside ``root`` are looked into."""
    heads: dict[str, bytes] = {}
    folders: list[Path] = []
    for spec in found:
        target = Path(spec.target)
        if not _inside(target, [root]):
            continue  # a link out of the root: reading it is refused later, with the reason
        head = _head(target)
        if head is not None:
            heads[spec.target] = head
            folders.extend(_skeleton_folders(target, head, root))
    for template in templates:
        try:
            real = template.resolve()
        except (OSError, RuntimeError):
            continue
        if _inside(real, [root]) and (head := _head(real)) is not None:
            folders.extend(_skeleton_folders(real, head, root))
    skipped: set[str] = set()
    for spec in found:
        target = Path(spec.target)
        if any(target == f or f in target.parents for f in folders):
            skipped.add(spec.target)
        elif (head := heads.get(spec.target)) is not None and _PLACEHOLDER_NAME.search(head):
            skipped.add(spec.target)
    return skipped


# --- glob targets --------------------------------------------------------------------------------
#
# A Location target such as ``./services/*/catalog-info.yaml`` is expanded as Backstage's
# FileReaderProcessor expands it (node-glob; rules in ``catalog.globs``): each match becomes a
# target of its own, read and reported as its own file. Expanding happens where the Location's
# file is processed (a worker), and the list of matches is part of that file's fingerprint (a
# ``glob:`` dependency), so a file that starts or stops matching is seen on the next sync though
# the Location itself did not change. The search never leaves the catalog root: the folder a
# pattern starts from must lie inside it, ``..`` may not follow a wildcard, ``**`` does not enter
# symlinked folders, and a symlinked folder a wildcard meets is entered only if it leads to a
# folder inside the root.

_GLOB_DEP = "glob:"


@dataclass(frozen=True, slots=True)
class GlobMatches:
    """What a glob target matched: files (absolute paths, sorted), notes on folders it did not
    search (symlinks out of the root), or why the pattern itself is refused."""

    files: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    error: str | None = None
    searched: tuple[str, ...] = ()  # the folders the pattern starts from (for "matches no file")

    def listing(self) -> bytes:
        """The bytes the fingerprint takes: a change in what matches changes them."""
        if self.error is not None:
            return b"\0refused:" + self.error.encode("utf-8", "surrogateescape")
        return "\n".join((*self.files, *("\0" + r for r in self.refused))).encode("utf-8", "surrogateescape")


def _glob_start(base: Path, alternative: str, raw: str, roots: Sequence[Path]) -> tuple[Path, GlobPattern] | Unreadable:
    """The real folder one brace-free pattern starts from and its segments, or why it is refused."""
    try:
        pattern = parse_pattern(alternative)
    except ValueError as exc:
        return Unreadable(f"Location target {raw} is not a usable pattern ({exc})")
    if ".." in pattern.segments:
        return Unreadable(f"Location target {raw} climbs out of a folder it searches (.. after a wildcard); "
                          "refused. Put the .. before the first wildcard, or register a folder that holds the files")
    try:
        start = (base / pattern.prefix).resolve() if pattern.prefix else base.resolve()
    except (OSError, RuntimeError, ValueError):
        return Unreadable(f"Location target {raw}: cannot resolve {base / pattern.prefix}")
    if not _inside(start, roots):
        if _in_git(start, roots):
            return Unreadable(_outside(f"Location target {raw}", start, roots))
        return Unreadable(f"Location target {raw} searches {start}, outside the catalog root "
                          f"({', '.join(map(str, roots))}); register a folder that holds both")
    return start, pattern


def glob_problem(base: Path, raw: str, roots: Sequence[Path]) -> str | None:
    """Why the glob target ``raw`` (relative to ``base``) may not be searched at all, or None."""
    try:
        alternatives = expand_braces(raw)
    except ValueError as exc:
        return f"Location target {raw} is refused: its {exc}"
    for alternative in alternatives:
        got = _glob_start(base, alternative, raw, roots)
        if isinstance(got, Unreadable):
            return got.message
    return None


def expand_glob(base: Path, raw: str, roots: Sequence[Path]) -> GlobMatches:
    """Every file the glob target ``raw`` matches, relative to the folder ``base`` (blocking:
    call it in a thread or a worker)."""
    problem = glob_problem(base, raw, roots)
    if problem is not None:
        return GlobMatches(error=problem)
    files: set[str] = set()
    refused: list[str] = []
    searched: list[str] = []
    for alternative in expand_braces(raw):
        got = _glob_start(base, alternative, raw, roots)
        assert not isinstance(got, Unreadable)  # glob_problem said so
        start, pattern = got
        searched.append(str(start))
        if pattern.segments:
            _walk(start, pattern, 0, roots, files, refused)
        elif _is_file_entry(start):  # braces alone: a plain path, matched when it is there
            files.add(str(start))
    return GlobMatches(files=tuple(sorted(files)), refused=tuple(dict.fromkeys(refused)),
                       searched=tuple(dict.fromkeys(searched)))


def _is_file_entry(path: Path) -> bool:
    """Something other than a folder is at ``path`` (a symlink counts as found: reading it decides)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return not stat.S_ISDIR(st.st_mode)


def _enter(path: Path, roots: Sequence[Path], refused: list[str]) -> Path | None:
    """The folder to search at ``path`` (a name a pattern segment matched), or None: not a folder,
    or a symlink leading out of the catalog root (noted), or a ``.git`` folder."""
    if path.name == ".git":
        return None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISDIR(st.st_mode):
        return path
    if not stat.S_ISLNK(st.st_mode):
        return None
    try:
        real = path.resolve()
    except (OSError, RuntimeError):
        return None
    if not _inside(real, roots):
        refused.append(f"{path} leads to {real}, outside the catalog root; not searched")
        return None
    return path if real.is_dir() else None


def _scan(folder: Path, refused: list[str]) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except PermissionError:
        refused.append(f"{folder} cannot be listed (permission denied); not searched")
    except OSError:
        pass
    return []


def _walk(folder: Path, pattern: GlobPattern, index: int, roots: Sequence[Path], files: set[str],
          refused: list[str]) -> None:
    segment = pattern.segments[index]
    last = index == len(pattern.segments) - 1
    if segment == GLOBSTAR:
        if last:  # everything below: files at any depth
            _all_files(folder, files, refused)
            return
        _walk(folder, pattern, index + 1, roots, files, refused)  # ** matching no folder
        for entry in _scan(folder, refused):
            if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
                _walk(folder / entry.name, pattern, index, roots, files, refused)
        return
    literal = pattern.literal(index)
    if literal is not None:
        path = folder / literal
        if last:
            if _is_file_entry(path):
                files.add(str(path))
        elif (inner := _enter(path, roots, refused)) is not None:
            _walk(inner, pattern, index + 1, roots, files, refused)
        return
    for entry in sorted(_scan(folder, refused), key=lambda e: e.name):
        if not segment_matches(segment, entry.name):
            continue
        path = folder / entry.name
        if last:
            if not entry.is_dir(follow_symlinks=False):
                files.add(str(path))
        elif (inner := _enter(path, roots, refused)) is not None:
            _walk(inner, pattern, index + 1, roots, files, refused)


def _all_files(folder: Path, files: set[str], refused: list[str]) -> None:
    """Every file below ``folder`` whose path holds no dot-name, not through symlinked folders
    (what a trailing ``**`` matches)."""
    stack = [folder]
    while stack:
        here = stack.pop()
        for entry in _scan(here, refused):
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(here / entry.name)
            else:
                files.add(str(here / entry.name))


def _is_file_glob(target: LocationTarget) -> bool:
    """A target the file source expands: a file target whose path is a pattern."""
    return (target.pattern is None and target.type in ("", "file")
            and not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", target.target) and has_magic(target.target))


def _expand_targets(
    items: list[ProcessedEntity | CatalogError | UnchangedDocument], file: str, location: str, roots: Sequence[Path]
) -> tuple[list[ProcessedEntity | CatalogError | UnchangedDocument], list[str]]:
    """Location entities' glob targets replaced by one target per match; the ``glob:``
    dependencies to fingerprint. A required pattern that matches nothing (or is refused) is kept
    as it is: resolving it then reports why, naming the entity (and, as in Backstage, the
    Location's previous targets are not dropped on that error); an optional one that matches
    nothing is simply left out, as Backstage emits nothing for it."""
    out: list[ProcessedEntity | CatalogError | UnchangedDocument] = []
    deps: list[str] = []
    base = Path(file).parent
    for item in items:
        if not isinstance(item, ProcessedEntity) or not any(_is_file_glob(t) for t in item.targets):
            out.append(item)
            continue
        targets: list[LocationTarget] = []
        notes: list[CatalogError] = []
        for t in item.targets:
            if not _is_file_glob(t):
                targets.append(t)
                continue
            deps.append(_GLOB_DEP + json.dumps([str(base), t.target]))
            found = expand_glob(base, t.target, roots)
            if found.files:
                targets.extend(LocationTarget(type="file", target=f, presence=t.presence, pattern=t.target)
                               for f in found.files)
            elif found.error is not None or t.presence != "optional":
                targets.append(t)
            notes.extend(
                CatalogError(file=item.file, line=item.line, entity=item.key, location=location,
                             message=f"Location target {t.target}: {note}")
                for note in found.refused
            )
        out.append(dataclasses.replace(item, targets=tuple(targets)))
        out.extend(notes)
    return out, deps


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    """Inside one of ``roots`` and in no ``.git`` folder below it (see :func:`_in_git`)."""
    return any(path == r or (r in path.parents and ".git" not in path.relative_to(r).parts) for r in roots)


def _in_git(path: Path, roots: Sequence[Path]) -> bool:
    """Below a root, inside a ``.git`` folder: written by the clone, not the repository's authors."""
    return any(r in path.parents and ".git" in path.relative_to(r).parts for r in roots)


def _registered(path: Path) -> bool:
    """True when ``path`` is where it leads (no symlink in it): then it was checked against the
    catalog root when it was registered (``discover``, ``FileSource.resolve``), and a later sync
    with fewer roots known (a re-sync from the database) may still read it."""
    try:
        return path.resolve() == path
    except (OSError, RuntimeError):
        return False


@dataclass
class FilePlaceholders:
    """Reads placeholder targets for one file; remembers what it read (for change detection)."""

    roots: tuple[str, ...]
    max_bytes: int = DEFAULT_MAX_BYTES
    read_paths: list[str] = field(default_factory=list)

    def read(self, target: str, base: str) -> str:
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", target):
            raise PlaceholderError(
                f"Placeholder points at {target}; a file catalog only reads placeholders from files "
                "inside the catalog (register the catalog by URL to read remote ones)"
            )
        path = Path(base).parent / target
        data = read_regular_file(path, self.max_bytes, name=f"Placeholder target {target}",
                                 roots=[Path(r) for r in self.roots])
        if isinstance(data, Unreadable):
            if data.missing:
                raise PlaceholderError(f"Placeholder target {target} does not exist (looked for {path.resolve()})")
            raise PlaceholderError(data.message)
        path = path.resolve()
        self.read_paths.append(str(path))
        text = decode(data, str(path))
        if isinstance(text, CatalogError):
            raise PlaceholderError(f"Placeholder target {target}: {text.message} (line {text.line})")
        return text


def _work(
    docs: list[Document], file: str, location: str, origin: str | None, roots: tuple[str, ...], max_bytes: int
) -> tuple[list[ProcessedEntity | CatalogError | UnchangedDocument], list[str]]:
    """Worker entry point (runs in a thread or a process): parse and process documents.

    ``process_documents`` keeps a document that exhausts the stack or memory to itself; should
    anything of that kind still get out, it is this batch's error, never the sync's."""
    reader = FilePlaceholders(roots=roots, max_bytes=max_bytes)
    try:
        items = process_documents(docs, file=file, location=location, origin=origin, reader=reader)
    except (RecursionError, MemoryError) as exc:
        first = docs[0].content_line if docs else None
        return [CatalogError(file=file, line=first, location=location,
                             message=f"Reading this file ran out of {'stack' if isinstance(exc, RecursionError) else 'memory'} "
                             f"({type(exc).__name__}); its documents from here on are refused")], reader.read_paths
    items, globs = _expand_targets(items, file, location, [Path(r) for r in roots])
    return items, reader.read_paths + globs


def _batches(docs: list[Document], size: int) -> list[list[Document]]:
    out: list[list[Document]] = []
    current: list[Document] = []
    weight = 0
    for doc in docs:
        current.append(doc)
        weight += len(doc.text)
        if weight >= size:
            out.append(current)
            current, weight = [], 0
    if current:
        out.append(current)
    return out


def _split(held: list[bytes], spec: LocationSpec) -> list[Document] | CatalogError:
    """The documents of the file content in ``held`` (taken out of it; blocking: call it in a
    thread)."""
    try:
        text = decode(held.pop(), spec.target)
        if isinstance(text, CatalogError):
            return CatalogError(file=text.file, line=text.line, message=text.message, location=spec.key)
        return split_documents(text, origin=spec.origin or spec.key)
    except MemoryError:
        return CatalogError(file=spec.target, location=spec.key, message=_out_of_memory(spec.target))


def _split_known(
    held: list[bytes], spec: LocationSpec, known: Mapping[str, str]
) -> tuple[list[ProcessedEntity | CatalogError | UnchangedDocument], list[Document]] | CatalogError:
    """The file's documents whose text is in ``known`` (unchanged, not parsed again), and the
    others (blocking: call it in a thread)."""
    docs = _split(held, spec)
    if isinstance(docs, CatalogError):
        return docs
    unchanged: list[ProcessedEntity | CatalogError | UnchangedDocument] = []
    todo: list[Document] = []
    for doc in docs:
        key = known.get(doc.source_hash)
        if key is not None:
            unchanged.append(UnchangedDocument(key=key, line=doc.content_line))
        else:
            todo.append(doc)
    return unchanged, todo


class FileSource:
    """Reads ``file`` locations. One instance per app; owns the parse worker pool."""

    type = "file"

    def __init__(self, roots: Sequence[str | os.PathLike[str]], *, max_bytes: int = DEFAULT_MAX_BYTES,
                 workers: int | None = None, other_types: Sequence[str] = ("url",)) -> None:
        resolved = []
        for r in roots:
            p = Path(r).expanduser().resolve()
            resolved.append(str(p if p.is_dir() else p.parent))
        self.roots = tuple(resolved)
        self._root_paths = tuple(Path(r) for r in resolved)
        self.max_bytes = max_bytes
        self._workers = workers if workers is not None else (os.cpu_count() or 1)
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._deps: dict[str, tuple[str, ...]] = {}
        #: location types other providers read: a Location target of such a type is theirs
        self.other_types = tuple(t for t in other_types if t != self.type)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _read(self, path: Path, name: str) -> bytes | Unreadable:
        """A file this source reads (blocking: call it in a thread)."""
        roots = None if _registered(path) else self._root_paths
        return read_regular_file(path, self.max_bytes, name=name, roots=roots)

    async def read(self, spec: LocationSpec, deps: Sequence[str]) -> ReadOutcome:
        content = await asyncio.to_thread(self._read, Path(spec.target), spec.target)
        if isinstance(content, Unreadable):
            if content.missing:
                return ReadOutcome(
                    missing=True,
                    error=CatalogError(
                        file=spec.target,
                        name="NotFoundError",
                        location=spec.key,
                        message=f"file {spec.target} does not exist",
                    ),
                )
            return ReadOutcome(error=CatalogError(file=spec.target, location=spec.key, message=content.message))
        content_digest = digest(content)
        return ReadOutcome(content=content, digest=content_digest,
                           fingerprint=fingerprint(content_digest, await self.dep_contents(deps)), deps=tuple(deps))

    async def dep_contents(self, deps: Sequence[str]) -> list[bytes]:
        """The placeholder files' bytes for the fingerprint. One that cannot be read counts as
        changed, so the location is processed again and the placeholder says why."""
        def contents() -> list[bytes]:
            out = []
            for dep in deps:
                if dep.startswith(_GLOB_DEP):  # a glob target: what it matches now
                    base, raw = json.loads(dep[len(_GLOB_DEP):])
                    out.append(expand_glob(Path(base), raw, self._root_paths).listing())
                    continue
                data = self._read(Path(dep), dep)
                out.append(b"\0missing" if isinstance(data, Unreadable) else data)
            return out

        return await asyncio.to_thread(contents) if deps else []

    def deps_read(self, spec: LocationSpec) -> tuple[str, ...]:
        return self._deps.get(spec.key, ())

    async def process(
        self, spec: LocationSpec, content: bytes, known: Mapping[str, str]
    ) -> AsyncIterator[list[ProcessedEntity | CatalogError | UnchangedDocument]]:
        # decoding and splitting a large file takes long: off the event loop; the thread takes
        # the only reference to the bytes, so they are freed once decoded
        held = [content]
        del content
        split = await asyncio.to_thread(_split_known, held, spec, known)
        if isinstance(split, CatalogError):
            yield [split]
            return
        unchanged, todo = split
        del split
        if unchanged:
            yield unchanged
        deps: list[str] = []
        args = (spec.target, spec.key, spec.origin, self.roots, self.max_bytes)
        size = sum(len(d.text) for d in todo)
        if size < _PARALLEL_FROM or self._workers < 2:
            if todo:
                items, read = await asyncio.to_thread(_work, todo, *args)
                deps.extend(read)
                yield items
        else:
            loop = asyncio.get_running_loop()
            pool = self._get_pool()
            pending: list[asyncio.Future[tuple[list[ProcessedEntity | CatalogError | UnchangedDocument], list[str]]]] = []
            batches = _batches(todo, _CHUNK_TARGET)
            del todo
            window = self._workers + 1
            next_batch = 0
            while next_batch < len(batches) or pending:
                while next_batch < len(batches) and len(pending) < window:
                    pending.append(loop.run_in_executor(pool, _work, batches[next_batch], *args))
                    batches[next_batch] = []
                    next_batch += 1
                items, read = await pending.pop(0)
                deps.extend(read)
                yield items
        self._deps[spec.key] = tuple(dict.fromkeys(deps))

    def _get_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            ctx = multiprocessing.get_context("forkserver")
            # the fork server imports the parse code once; each worker starts as a fork of it
            # (it takes effect when the fork server starts: the first pool of the process)
            ctx.set_forkserver_preload([__name__])
            self._pool = concurrent.futures.ProcessPoolExecutor(max_workers=self._workers, mp_context=ctx)
        return self._pool

    def resolve(self, parent: LocationSpec, target: LocationTarget) -> LocationSpec | CatalogError:
        raw = target.target
        if re.match(r"^https?://", raw) or target.type == "url":
            listed = url_glob_problem(raw, strip_userinfo(raw))
            if listed is not None:
                return CatalogError(file=parent.target, location=parent.key, message=listed)
            return LocationSpec(type="url", target=raw, presence=target.presence)
        if target.type in self.other_types:
            return LocationSpec(type=target.type, target=raw, presence=target.presence)
        if target.type not in ("", "file"):
            readable = ", ".join(sorted({"file", "url", *self.other_types}))
            return CatalogError(
                file=parent.target,
                location=parent.key,
                message=f'Location target type "{target.type}" is not supported ({readable} are)',
            )
        if "\0" in raw:
            return CatalogError(file=parent.target, location=parent.key, message=_nul(f"Location target {raw}"))
        if _is_file_glob(target):
            # expanded where the Location was read (``_expand_targets``); one that comes here
            # matched nothing, or may not be searched
            base = Path(parent.target).parent
            problem = glob_problem(base, raw, self._root_paths)
            if problem is not None:
                return CatalogError(file=parent.target, location=parent.key, message=problem)
            searched = ", ".join(expand_glob(base, raw, self._root_paths).searched)
            return CatalogError(file=parent.target, location=parent.key, name="NotFoundError",
                                message=f"No file matches the Location target pattern {raw} (searched {searched})")
        shown = raw if target.pattern is None else f"{raw} (matched by {target.pattern})"
        try:
            path = (Path(parent.target).parent / raw).resolve()
        except ValueError:  # a NUL in the target
            return CatalogError(file=parent.target, location=parent.key, message=_nul(f"Location target {raw}"))
        except RuntimeError:  # a symlink loop (Python < 3.13 says so this way)
            return CatalogError(file=parent.target, location=parent.key,
                                message=f"Location target {shown} is a symlink loop; refused")
        if not _inside(path, [Path(r) for r in self.roots]):
            return CatalogError(
                file=parent.target,
                location=parent.key,
                message=_outside(f"Location target {shown}", path, [Path(r) for r in self.roots])
                if _in_git(path, [Path(r) for r in self.roots]) else
                f"Location target {shown} resolves to {path}, outside the catalog root "
                f"({', '.join(self.roots)}); register a folder that holds both",
            )
        return LocationSpec(type="file", target=str(path), presence=target.presence)


@dataclass(frozen=True, slots=True, kw_only=True)
class FileConfig:
    """``providers.file`` in callboard.yaml."""

    workers: int | None = None  # processes that parse big files; default: one per CPU

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be 1 or more, got {self.workers}")


def _create(config: FileConfig, ctx: ProviderContext) -> FileSource:
    return FileSource(ctx.catalog_roots, max_bytes=ctx.max_file_bytes, workers=config.workers,
                      other_types=ctx.location_types)


PROVIDER = Provider(config=FileConfig, create=_create, summary="catalog files and folders on disk")
