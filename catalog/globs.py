"""Glob patterns in Location targets, read as Backstage reads them.

Backstage's ``FileReaderProcessor`` hands a ``file`` target to node-glob (v7, default options):
``./services/*/catalog-info.yaml`` reads every match, each as its own file. This module is the
pure half of that: it says whether a target is a pattern, expands ``{a,b}`` braces, cuts the
pattern into the literal folder it starts from and the segments to match below it, and matches
one segment against one name. The walk over the disk is the file source's
(``providers.files``), which also keeps it inside the catalog root.

The rules are node-glob's defaults (minimatch): ``*`` and ``?`` never match ``/``; ``**`` as a
whole segment matches any number of folders (zero included) and does not enter folders whose
name starts with a dot, nor symlinked folders; a wildcard never matches a leading dot (a segment
must itself start with ``.`` to match ``.hidden``); ``[abc]``, ``[a-z]``, ``[!a]`` and ``[^a]``
are classes; ``\\`` escapes the next character; ``{a,b}`` and ``{1..3}`` expand first. What
Callboard does not take from minimatch: extglobs (``+(a|b)``, ``!(a)``, ...) are plain text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

__all__ = ["GLOBSTAR", "GlobPattern", "expand_braces", "has_magic", "parse_pattern", "segment_matches", "url_glob_problem"]

#: a ``**`` segment
GLOBSTAR = "**"

_MAX_BRACE_EXPANSIONS = 256  # a target is a path, not a generator: refuse combinatorial braces
_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)$|^([a-zA-Z])\.\.([a-zA-Z])$")


def has_magic(pattern: str) -> bool:
    """Whether ``pattern`` is a glob (a wildcard, a class or a brace set outside escapes)."""
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c in "*?":
            return True
        if c == "[" and _class_end(pattern, i) != -1:
            return True
        if c == "{":
            end, parts = _brace_parts(pattern, i)
            if end != -1 and (len(parts) > 1 or _RANGE.match(parts[0])):
                return True
        i += 1
    return False


def _class_end(pattern: str, start: int) -> int:
    """Index of the ``]`` closing the class opened at ``start``, or -1 (then ``[`` is literal)."""
    i = start + 1
    if i < len(pattern) and pattern[i] in "!^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":  # a leading ] is a member
        i += 1
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        if pattern[i] == "/":
            return -1
        if pattern[i] == "]":
            return i
        i += 1
    return -1


def expand_braces(pattern: str) -> list[str]:
    """``a{b,c}d`` -> ``abd``, ``acd``; nested sets and ``{1..3}``/``{a..c}`` ranges too, as
    brace-expansion (minimatch's first step) does. A brace with no comma or range stays as it
    is. Raises ``ValueError`` past ``_MAX_BRACE_EXPANSIONS`` results."""
    out = _expand(pattern)
    if len(out) > _MAX_BRACE_EXPANSIONS:
        raise ValueError(f"braces expand to more than {_MAX_BRACE_EXPANSIONS} patterns")
    return out


def _expand(pattern: str) -> list[str]:
    start = _first_brace(pattern)
    if start == -1:
        return [pattern]
    end, parts = _brace_parts(pattern, start)
    if end == -1:
        return [pattern]
    head, tail = pattern[:start], pattern[end + 1:]
    options: list[str]
    if len(parts) == 1:
        ranged = _range(parts[0])
        if ranged is None:  # no comma, no range: literal braces, look further on
            return [head + "{" + s for s in _expand(pattern[start + 1:])]
        options = ranged
    else:
        options = [x for part in parts for x in _expand(part)]
    results: list[str] = []
    for rest in _expand(tail):
        for option in options:
            results.append(head + option + rest)
            if len(results) > _MAX_BRACE_EXPANSIONS:
                return results
    return results


def _first_brace(pattern: str) -> int:
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        if pattern[i] == "{":
            return i
        i += 1
    return -1


def _brace_parts(pattern: str, start: int) -> tuple[int, list[str]]:
    """(index of the matching ``}``, the comma-separated parts at depth one) or (-1, [])."""
    depth, i, part_start = 0, start, start + 1
    parts: list[str] = []
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                parts.append(pattern[part_start:i])
                return i, parts
        elif c == "," and depth == 1:
            parts.append(pattern[part_start:i])
            part_start = i + 1
        i += 1
    return -1, []


def _range(body: str) -> list[str] | None:
    m = _RANGE.match(body)
    if m is None:
        return None
    if m.group(1) is not None:
        a, b = int(m.group(1)), int(m.group(2))
        if abs(b - a) >= _MAX_BRACE_EXPANSIONS:
            raise ValueError(f"braces expand to more than {_MAX_BRACE_EXPANSIONS} patterns")
        step = 1 if b >= a else -1
        return [str(x) for x in range(a, b + step, step)]
    a_char, b_char = ord(m.group(3)), ord(m.group(4))
    step = 1 if b_char >= a_char else -1
    return [chr(x) for x in range(a_char, b_char + step, step)]


@dataclass(frozen=True, slots=True)
class GlobPattern:
    """One brace-free pattern: the literal folder path it starts from (``prefix``, ``/``-joined,
    maybe empty or absolute) and the segments below it, each a literal name, ``GLOBSTAR`` or a
    segment pattern (see :func:`segment_matches`)."""

    prefix: str
    segments: tuple[str, ...]

    def literal(self, index: int) -> str | None:
        """Segment ``index`` as a plain name when it holds no wildcard, else None."""
        seg = self.segments[index]
        if seg == GLOBSTAR or has_magic(seg):
            return None
        return _unescape(seg)


def parse_pattern(pattern: str) -> GlobPattern:
    """Cut a brace-free pattern into its literal prefix and the segments from the first magic
    one on. ``.`` segments are dropped; ``..`` stays (the caller decides whether to allow it)."""
    absolute = pattern.startswith("/")
    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    prefix: list[str] = []
    i = 0
    while i < len(parts) and parts[i] != GLOBSTAR and not has_magic(parts[i]):
        prefix.append(_unescape(parts[i]))
        i += 1
    joined = "/".join(prefix)
    return GlobPattern(prefix=("/" + joined) if absolute else joined, segments=tuple(parts[i:]))


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def segment_matches(segment: str, name: str) -> bool:
    """Whether one directory entry's ``name`` matches one pattern segment (not ``**``)."""
    if name in (".", ".."):
        return False
    if name.startswith(".") and not segment.startswith("."):
        return False  # node-glob's default: a wildcard never matches a leading dot
    return _segment_regex(segment).fullmatch(name) is not None


@lru_cache(maxsize=256)
def _segment_regex(segment: str) -> re.Pattern[str]:
    out: list[str] = []
    i, n = 0, len(segment)
    while i < n:
        c = segment[i]
        if c == "\\" and i + 1 < n:
            out.append(re.escape(segment[i + 1]))
            i += 2
        elif c == "*":
            while i < n and segment[i] == "*":
                i += 1
            out.append(".*")
        elif c == "?":
            out.append(".")
            i += 1
        elif c == "[" and (end := _class_end(segment, i)) != -1:
            body = segment[i + 1:end]
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            members = "".join("\\" + ch if ch in "\\^[]" else ch for ch in _unescape_class(body))
            out.append(f"[{'^' if negate else ''}{members}]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out), re.DOTALL)


def _unescape_class(body: str) -> str:
    """A class body with ``\\x`` escapes resolved (ranges ``a-z`` kept as they are)."""
    return re.sub(r"\\(.)", r"\1", body)


def url_glob_problem(url: str, shown: str | None = None) -> str | None:
    """Why a ``url`` target that is a pattern cannot be read, or None when it is not one.

    Backstage's UrlReaderProcessor treats a URL whose file path holds ``*`` or ``?`` as a search
    and lists the matches through its source-control integration (GitHub's tree API, GitLab's,
    ...). A plain http(s) server has no listing to ask, and Callboard reads URLs as plain http(s):
    such a target is refused with what to do instead, rather than fetched as a literal name and
    reported missing. (``?`` is not looked for: in a URL it starts the query.) ``shown``: the URL
    as the message names it (without credentials).
    """
    try:
        path = urlsplit(url).path
    except ValueError:
        return None  # not a URL at all: resolving it says so
    if "*" not in path:
        return None
    return (f"Location target {shown or url} is a glob pattern; Callboard reads http(s) URLs one file at a time and "
            "cannot list a folder behind one (Backstage asks its GitHub or GitLab integration to search). "
            "List the files as targets, or register a checkout of the repository as a folder, where "
            "patterns are expanded")
