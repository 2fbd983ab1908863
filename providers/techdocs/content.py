"""What a built site says: its sections and a section's content as chat-readable parts, both
read from the rendered pages, so a runbook's steps can be posted inline and a snippet shows a
command as it was written.

MkDocs' own search index (``search/search_index.json``) says which pages and sections a site
has and their titles, but its text is unfit to show: it joins every piece of text with a space,
and a highlighted code block is one piece per token (``app = blob-gateway``,
``--replicas = 10``), with the line numbers of ``linenums`` in front. So the text of each
section is read here from the page itself, with code kept byte for byte: inline code between
backticks, a code block between fences on lines of its own, and where each code span lies
(``Section.code``), so a snippet never cuts a command or marks a word inside one.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from .index import CodeSpan, Section

__all__ = ["Part", "Run", "heading_paths", "page_file", "page_parts", "section_parts", "section_text",
           "sections_from_site"]

_PERMALINK = "¶"
_SPACE = re.compile(r"\s+")
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
#: what a page shows but is not its content: code line numbers (Pygments' table and inline
#: styles, pymdownx's), permalinks, Material's copy buttons and annotation markers
_SKIP_CLASSES = {"linenos", "linenodiv", "lineno", "headerlink", "md-clipboard", "md-annotation__index"}
_SKIP_TAGS = {"script", "style", "svg", "button", "nav", "template", "noscript"}
_VOID = {"br", "hr", "img", "input", "meta", "link", "wbr", "source", "col", "area", "base", "embed", "param", "track"}
_BLOCKS = ("p", "div", "blockquote", "details", "summary", "dl", "dd", "dt", "figure", "figcaption")
_LANGUAGE = "language-"


@dataclass(frozen=True, slots=True)
class Run:
    """A piece of a part's content: prose (``kind`` text), inline code (code), or a code block
    (block, with its ``language``). Code is kept exactly as the page shows it."""

    text: str
    kind: str = "text"
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Part:
    """One piece of a section: ``kind`` is paragraph | steps | bullets | code | heading.

    ``text`` (and each of ``items``) is the piece as chat text: inline code between backticks,
    a code block inside an item between fences on lines of their own. ``runs`` (``item_runs``)
    hold the same content unformatted; a heading has its ``level`` and ``anchor``."""

    kind: str
    text: str = ""
    items: tuple[str, ...] = ()
    language: str | None = None
    runs: tuple[Run, ...] = ()
    item_runs: tuple[tuple[Run, ...], ...] = ()
    level: int = 0
    anchor: str = ""


def _clean(text: str) -> str:
    """Search-index text as plain text (titles there are HTML-escaped: ``Plugins &amp; Extensions``)."""
    return _SPACE.sub(" ", html.unescape(text).replace(_PERMALINK, " ")).strip()


_LINE_NUMBERS = re.compile(r"(?<!\S)1(?: \d+)*(?!\S)")


def _drop_line_numbers(text: str) -> str:
    """MkDocs' search text keeps code blocks' line numbers ("1 2 3 4 ..."): noise. Only for a
    section whose page could not be read (its text then comes from MkDocs' index)."""

    def strip(m: re.Match[str]) -> str:
        numbers = m.group(0).split()
        return "" if len(numbers) > 1 and numbers == [str(i) for i in range(1, len(numbers) + 1)] else m.group(0)

    return _SPACE.sub(" ", _LINE_NUMBERS.sub(strip, text)).strip()


# --- chat text of runs ------------------------------------------------------------------------


def _ticks(content: str, least: int) -> str:
    """A backtick fence longer than any run of backticks in ``content`` (CommonMark's rule)."""
    longest = max((len(m) for m in re.findall(r"`+", content)), default=0)
    return "`" * max(least, longest + 1)


class _TextBuilder:
    """Chat text from runs, and where its code spans lie: (start of the span's opening mark, start
    of the code, end of the code, end of the closing mark), in characters."""

    def __init__(self) -> None:
        self._out: list[str] = []
        self._len = 0
        self._last = ""  # the last character written
        self._after_block = False
        self.spans: list[CodeSpan] = []

    def _put(self, s: str) -> None:
        if s:
            self._out.append(s)
            self._len += len(s)
            self._last = s[-1]

    def _line_break(self) -> None:
        """The next thing starts a line (after a code block)."""
        if self._after_block:
            self._put("\n")
            self._after_block = False

    def space(self) -> None:
        """Words of two parts apart."""
        if self._len and not self._after_block and self._last not in " \n":
            self._put(" ")

    def prose(self, text: str) -> None:
        text = _SPACE.sub(" ", text)
        if not text.strip():
            if text:
                self.space()
            return
        if self._after_block:
            text = text.lstrip()
            self._line_break()
        elif not self._len or self._last in " \n":
            text = text.lstrip()
        self._put(text)

    def code(self, text: str) -> None:
        text = text.replace("\r\n", "\n").replace("\n", " ")
        if not text:
            return
        self._line_break()
        fence = _ticks(text, 1)
        pad = " " if text.startswith("`") or text.endswith("`") else ""
        start = self._len
        self._put(fence + pad)
        inner = self._len
        self._put(text)
        end = self._len
        self._put(pad + fence)
        self.spans.append((start, inner, end, self._len))

    def block(self, text: str, language: str | None) -> None:
        text = text.replace("\r\n", "\n").strip("\n")
        if not text.strip():
            return
        if self._len:  # the block starts a line; spaces before it go (no code span ends in one)
            before = "".join(self._out).rstrip(" ")
            self._out, self._len, self._last = [before], len(before), before[-1:]
            self._put("\n")
        fence = _ticks(text, 3)
        start = self._len
        self._put(f"{fence}{language or ''}\n")
        inner = self._len
        self._put(text)
        end = self._len
        self._put(f"\n{fence}")
        self.spans.append((start, inner, end, self._len))
        self._after_block = True

    def runs(self, runs: tuple[Run, ...] | list[Run]) -> None:
        for run in runs:
            if run.kind == "code":
                self.code(run.text)
            elif run.kind == "block":
                self.block(run.text, run.language)
            else:
                self.prose(run.text)

    def text(self) -> str:
        return "".join(self._out).rstrip(" ")


def _chat(runs: tuple[Run, ...] | list[Run]) -> str:
    builder = _TextBuilder()
    builder.runs(runs)
    return builder.text()


def section_text(parts: list[Part]) -> tuple[str, tuple[CodeSpan, ...]]:
    """A section's parts as one text (what is searched and what snippets come from) and its code spans."""
    builder = _TextBuilder()
    for part in parts:
        if part.kind == "code":
            builder.block(part.text, part.language)
        elif part.kind in ("steps", "bullets"):
            for item in part.item_runs:
                builder.space()
                builder.runs(item)
        else:
            builder.space()
            builder.runs(part.runs)
    return builder.text(), tuple(builder.spans)


def _normal(runs: list[Run]) -> tuple[Run, ...]:
    """Adjacent prose merged, its whitespace collapsed, and trimmed at both ends."""
    merged: list[Run] = []
    for run in runs:
        if run.kind == "text" and merged and merged[-1].kind == "text":
            merged[-1] = Run(merged[-1].text + run.text)
        else:
            merged.append(run)
    out = [Run(_SPACE.sub(" ", r.text.replace(_PERMALINK, " "))) if r.kind == "text" else r for r in merged]
    while out and out[0].kind == "text" and not out[0].text.strip():
        out.pop(0)
    while out and out[-1].kind == "text" and not out[-1].text.strip():
        out.pop()
    if out and out[0].kind == "text":
        out[0] = Run(out[0].text.lstrip())
    if out and out[-1].kind == "text":
        out[-1] = Run(out[-1].text.rstrip())
    return tuple(out)


def _plain(runs: tuple[Run, ...]) -> str:
    """Runs without formatting (a heading's title)."""
    return _SPACE.sub(" ", "".join(r.text for r in runs)).strip()


# --- reading a page -----------------------------------------------------------------------------


class _PageParser(HTMLParser):
    """Walks a page's ``<article>`` into parts, in order: headings (with level and id),
    paragraphs, lists, code blocks; tables row by row."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[Part] = []
        self._in_article = 0
        self._skip = 0  # depth inside skipped elements
        self._stack: list[str] = []
        self._buf: list[Run] = []
        self._lists: list[tuple[bool, list[list[Run]]]] = []  # (ordered, items)
        self._pre = 0
        self._pre_lang: str | None = None
        self._pre_buf: list[str] = []
        self._code = 0  # depth inside inline <code>
        self._heading: tuple[int, str] | None = None
        self._cells: list[tuple[Run, ...]] | None = None
        self._tables: list[bool] = []  # per open table: True for a code block's line-number table
        self._lang_hint: str | None = None

    def _flush(self) -> None:
        """What was read since the last block boundary: a paragraph, or more of a list item."""
        if self._cells is not None:  # in a table row: a cell's text waits for the cell's end
            if self._buf:
                self._buf.append(Run(" "))
            return
        runs = _normal(self._buf)
        self._buf = []
        if not runs:
            return
        if self._lists:
            items = self._lists[-1][1]
            if not items:
                items.append([])
            item = items[-1]
            if item and item[-1].kind != "block":
                item.append(Run(" "))
            item.extend(runs)
        else:
            self.parts.append(Part("paragraph", text=_chat(runs), runs=runs))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        classes = set((attr.get("class") or "").split())
        if tag == "article":
            self._in_article += 1
        if not self._in_article:
            return
        if tag not in _VOID:
            self._stack.append(tag)
        if self._skip:
            if tag not in _VOID:
                self._skip += 1
            return
        if classes & _SKIP_CLASSES or tag in _SKIP_TAGS:
            if tag not in _VOID:
                self._skip = 1
            return
        lang = next((c[len(_LANGUAGE):] for c in classes if c.startswith(_LANGUAGE)), None) or None
        if tag in _HEADINGS:
            self._flush()
            self._heading = (_HEADINGS[tag], attr.get("id") or "")
        elif tag == "pre":
            self._flush()
            self._pre += 1
            self._pre_buf = []
            self._pre_lang = lang or self._lang_hint
            self._lang_hint = None
        elif tag == "code" and self._pre:
            self._pre_lang = self._pre_lang or lang
        elif tag == "code":
            self._code += 1
        elif tag in ("ol", "ul"):
            self._flush()
            self._lists.append((tag == "ol", []))
        elif tag == "li":
            self._flush()
            if self._lists:
                self._lists[-1][1].append([])
        elif tag == "table":
            self._flush()
            self._tables.append("highlighttable" in classes)
        elif tag == "tr" and not self._in_code_table():
            self._flush()
            self._cells = []
        elif tag in ("td", "th") and self._cells is not None:
            self._buf = []
        elif tag in _BLOCKS:
            self._flush()
            if lang:
                self._lang_hint = lang
        elif tag == "br":
            self._data(" ")

    def handle_endtag(self, tag: str) -> None:
        if not self._in_article:
            return
        if self._stack and tag in self._stack:
            while self._stack:
                top = self._stack.pop()
                if self._skip:
                    self._skip -= 1
                if top == tag:
                    break
            if self._skip:
                return
        elif tag != "article":
            return  # an end tag that closes nothing open
        if tag == "article":
            self._flush()
            self._in_article -= 1
        elif tag in _HEADINGS and self._heading is not None:
            level, anchor = self._heading
            runs = _normal(self._buf)
            self._buf = []
            self._heading = None
            title = _plain(runs)
            if title or anchor:
                self.parts.append(Part("heading", text=title, runs=runs, level=level, anchor=anchor))
        elif tag == "pre" and self._pre:
            self._pre -= 1
            code = "".join(self._pre_buf).strip("\n")
            self._pre_buf = []
            if code.strip():
                if self._lists and self._lists[-1][1]:  # a command inside a step stays with the step
                    self._lists[-1][1][-1].append(Run(code, "block", self._pre_lang))
                else:
                    self.parts.append(Part("code", text=code, language=self._pre_lang,
                                           runs=(Run(code, "block", self._pre_lang),)))
            self._pre_lang = None
        elif tag == "code" and not self._pre and self._code:
            self._code -= 1
        elif tag in ("ol", "ul") and self._lists:
            self._flush()
            ordered, items = self._lists.pop()
            kept = [tuple(i) for i in items if _normal(i)]
            if kept:
                if self._lists:  # a nested list: its items join the parent's last item
                    parent = self._lists[-1][1]
                    if not parent:
                        parent.append([])
                    joined: list[Run] = [Run(" (")] if parent[-1] else []
                    for n, item in enumerate(kept):
                        if n:
                            joined.append(Run("; "))
                        joined.extend(item)
                    if parent[-1]:
                        joined.append(Run(")"))
                    parent[-1].extend(joined)
                else:
                    item_runs = tuple(_normal(list(i)) for i in kept)
                    self.parts.append(Part("steps" if ordered else "bullets", items=tuple(_chat(r) for r in item_runs),
                                           item_runs=item_runs))
        elif tag == "table":
            self._flush()
            if self._tables:
                self._tables.pop()
        elif tag in ("td", "th") and self._cells is not None:
            self._cells.append(_normal(self._buf))
            self._buf = []
        elif tag == "tr" and self._cells is not None:
            cells, self._cells = self._cells, None
            row: list[Run] = []
            for n, cell in enumerate(cells):
                if n:
                    row.append(Run(" | "))
                row.extend(cell)
            runs = _normal(row)
            if _plain(runs).strip(" |"):
                self._buf = list(runs)
                self._flush()
        elif tag == "label":  # tab labels (pymdownx.tabbed) stand side by side: words apart
            self._data(" ")
        elif tag in ("li", *_BLOCKS):
            self._flush()

    def _in_code_table(self) -> bool:
        return bool(self._tables) and self._tables[-1]

    def handle_data(self, data: str) -> None:
        if not self._in_article or self._skip:
            return
        self._data(data)

    def _data(self, data: str) -> None:
        if self._pre:
            self._pre_buf.append(data)
        elif self._code:
            if self._buf and self._buf[-1].kind == "code":
                self._buf[-1] = Run(self._buf[-1].text + data, "code")
            else:
                self._buf.append(Run(data, "code"))
        else:
            self._buf.append(Run(data))


def page_parts(page_html: str) -> list[Part]:
    """The parts of a page's article, headings among them, in order."""
    parser = _PageParser()
    parser.feed(page_html)
    parser.close()
    return parser.parts


def heading_paths(page_html: str) -> dict[str, tuple[str, ...]]:
    """For each heading id, the headings above it (outermost first)."""
    return _paths(page_parts(page_html))


def _paths(parts: list[Part]) -> dict[str, tuple[str, ...]]:
    stack: list[tuple[int, str]] = []
    out: dict[str, tuple[str, ...]] = {}
    for part in parts:
        if part.kind != "heading":
            continue
        while stack and stack[-1][0] >= part.level:
            stack.pop()
        if part.anchor:
            out[part.anchor] = tuple(t for _, t in stack)
        stack.append((part.level, part.text))
    return out


def _slice(parts: list[Part], anchor: str | None, *, own: bool = False) -> list[Part] | None:
    """The parts of the section at ``anchor``: up to the next heading of the same or a higher
    level (``own``: up to the next heading of any level); the heading itself left out. The whole
    page for no anchor (only what comes before the first heading with ``own``). None when the
    page has no such heading."""
    if not anchor:
        if not own:
            return list(parts)
        end = next((i for i, p in enumerate(parts) if p.kind == "heading"), len(parts))
        return parts[:end]
    start = next((i for i, p in enumerate(parts) if p.kind == "heading" and p.anchor == anchor), None)
    if start is None:
        return None
    level = parts[start].level
    out = []
    for part in parts[start + 1 :]:
        if part.kind == "heading" and (own or part.level <= level):
            break
        out.append(part)
    return out


# --- a built site -------------------------------------------------------------------------------


def sections_from_site(site: Path) -> list[Section]:
    """Every section MkDocs indexed (a page without sections counts as one), with its heading
    path, its text read from the page (MkDocs' text only where the page cannot be read)."""
    index_file = site / "search" / "search_index.json"
    data = json.loads(index_file.read_text(encoding="utf-8"))
    docs = data.get("docs") or []
    pages: dict[str, str] = {}
    with_sections: set[str] = set()
    for doc in docs:
        location = str(doc.get("location", ""))
        page, _, anchor = location.partition("#")
        if anchor:
            with_sections.add(page)
        else:
            pages[page] = _clean(str(doc.get("title", "")))
    read: dict[str, list[Part] | None] = {}
    out: list[Section] = []
    for doc in docs:
        location = str(doc.get("location", ""))
        page, _, anchor = location.partition("#")
        if not anchor and page in with_sections:
            continue
        if page not in read:
            html_file = page_file(site, page)
            read[page] = page_parts(html_file.read_text(encoding="utf-8", errors="replace")) if html_file else None
        parts = read[page]
        title = _clean(str(doc.get("title", "")))
        own = _slice(parts, anchor or None, own=bool(anchor)) if parts is not None else None
        if own is not None:
            if not anchor:
                own = [p for p in own if p.kind != "heading"]
            text, code = section_text(own)
        else:
            text, code = _drop_line_numbers(_clean(str(doc.get("text", "")))), ()
        out.append(
            Section(
                location=location,
                page_title=pages.get(page, title),
                title=title,
                text=text,
                path=_paths(parts).get(anchor, ()) if parts is not None and anchor else (),
                code=code,
            )
        )
    return out


def page_file(site: Path, location: str) -> Path | None:
    """The HTML file of a location, inside ``site`` (None when it would leave it or is missing)."""
    page = location.partition("#")[0]
    candidate = (site / page / "index.html") if (not page or page.endswith("/")) else (site / page)
    try:
        resolved = candidate.resolve()
        resolved.relative_to(site.resolve())
    except (OSError, ValueError):
        return None
    return resolved if resolved.is_file() else None


def section_parts(site: Path, location: str, *, limit: int = 60, own: bool = False) -> list[Part]:
    """The section at ``location`` (``page/#anchor``) as parts, the headings under it among them;
    the page's content for a page location. ``own``: only the section's own content, up to the
    next heading of any level (a runbook's introduction without its topics)."""
    path = page_file(site, location)
    if path is None:
        return []
    parts = page_parts(path.read_text(encoding="utf-8", errors="replace"))
    return (_slice(parts, location.partition("#")[2] or None, own=own) or [])[:limit]
