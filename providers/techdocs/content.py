"""What a built site says: its sections (from MkDocs' search index) and a section's content
as chat-readable parts (from the rendered page), so a runbook's steps can be posted inline."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from .index import Section

__all__ = ["Part", "page_file", "section_parts", "sections_from_site"]

_PERMALINK = "¶"
_SPACE = re.compile(r"\s+")
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_SKIP_CLASSES = {"linenos", "headerlink", "md-clipboard", "md-annotation__index"}
_VOID = {"br", "hr", "img", "input", "meta", "link", "wbr", "source", "col", "area", "base", "embed", "param", "track"}


@dataclass(frozen=True, slots=True)
class Part:
    """One piece of a section: ``kind`` is paragraph | steps | bullets | code | heading."""

    kind: str
    text: str = ""
    items: tuple[str, ...] = ()
    language: str | None = None


_LINE_NUMBERS = re.compile(r"(?<!\S)1(?: \d+)+(?!\S)")


def _clean(text: str) -> str:
    """Search-index text as plain text (titles there are HTML-escaped: ``Plugins &amp; Extensions``)."""
    return _SPACE.sub(" ", html.unescape(text).replace(_PERMALINK, " ")).strip()


def _drop_line_numbers(text: str) -> str:
    """MkDocs' search text keeps code blocks' line numbers ("1 2 3 4 ..."): noise for search."""

    def strip(m: re.Match[str]) -> str:
        numbers = m.group(0).split()
        return "" if numbers == [str(i) for i in range(1, len(numbers) + 1)] else m.group(0)

    return _SPACE.sub(" ", _LINE_NUMBERS.sub(strip, text)).strip()


class _Headings(HTMLParser):
    """(level, id, text) of every heading in a page's article."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, str, str]] = []
        self._article = 0
        self._open: tuple[int, str] | None = None
        self._text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "article":
            self._article += 1
        elif self._article and tag in _HEADINGS:
            self._open, self._text = (_HEADINGS[tag], dict(attrs).get("id") or ""), []
        elif self._open and tag == "a" and "headerlink" in (dict(attrs).get("class") or ""):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "article":
            self._article -= 1
        elif tag == "a" and self._skip:
            self._skip -= 1
        elif self._open and tag in _HEADINGS:
            level, anchor = self._open
            self.found.append((level, anchor, _clean("".join(self._text))))
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open and not self._skip:
            self._text.append(data)


def heading_paths(page_html: str) -> dict[str, tuple[str, ...]]:
    """For each heading id, the headings above it (outermost first)."""
    parser = _Headings()
    parser.feed(page_html)
    parser.close()
    stack: list[tuple[int, str]] = []
    out: dict[str, tuple[str, ...]] = {}
    for level, anchor, text in parser.found:
        while stack and stack[-1][0] >= level:
            stack.pop()
        if anchor:
            out[anchor] = tuple(t for _, t in stack)
        stack.append((level, text))
    return out


def sections_from_site(site: Path) -> list[Section]:
    """Every section MkDocs indexed, with its heading path; a page without sections counts as one."""
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
    paths: dict[str, dict[str, tuple[str, ...]]] = {}
    for page in with_sections:
        html_file = page_file(site, page)
        paths[page] = heading_paths(html_file.read_text(encoding="utf-8", errors="replace")) if html_file else {}
    out: list[Section] = []
    for doc in docs:
        location = str(doc.get("location", ""))
        page, _, anchor = location.partition("#")
        if not anchor and page in with_sections:
            continue
        title = _clean(str(doc.get("title", "")))
        out.append(
            Section(
                location=location,
                page_title=pages.get(page, title),
                title=title,
                text=_drop_line_numbers(_clean(str(doc.get("text", "")))),
                path=paths.get(page, {}).get(anchor, ()),
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


def section_parts(site: Path, location: str, *, limit: int = 60) -> list[Part]:
    """The section at ``location`` (``page/#anchor``) as parts; the page's content for a page location."""
    path = page_file(site, location)
    if path is None:
        return []
    anchor = location.partition("#")[2] or None
    parser = _SectionParser(anchor)
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    return parser.parts[:limit]


class _SectionParser(HTMLParser):
    """Walks the page's article; collects from the anchored heading to the next heading of the
    same or a higher level (the whole article when no anchor)."""

    def __init__(self, anchor: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.anchor = anchor
        self.parts: list[Part] = []
        self._in_article = 0
        self._capturing = anchor is None
        self._level: int | None = None
        self._done = False
        self._skip = 0  # depth inside skipped elements
        self._stack: list[str] = []
        self._buf: list[str] = []
        self._lists: list[tuple[bool, list[str]]] = []  # (ordered, items)
        self._pre = 0
        self._pre_lang: str | None = None
        self._heading: int | None = None
        self._cell_row: list[str] | None = None
        self._lang_hint: str | None = None

    # -- helpers
    def _flush_paragraph(self) -> None:
        text = _clean("".join(self._buf))
        self._buf = []
        if text and self._capturing and not self._done:
            if self._lists:
                items = self._lists[-1][1]
                if items:
                    sep = "\n" if items[-1].endswith("```") else " "
                    items[-1] = f"{items[-1]}{sep}{text}" if items[-1] else text
                else:
                    items.append(text)
            else:
                self.parts.append(Part("paragraph", text=text))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._done:
            return
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
        if classes & _SKIP_CLASSES or tag in ("script", "style", "svg", "button", "nav"):
            if tag not in _VOID:
                self._skip = 1
            return
        if tag in _HEADINGS:
            level = _HEADINGS[tag]
            if not self._capturing and attr.get("id") == self.anchor:
                self._capturing, self._level = True, level
                self._heading = None  # the anchored heading itself is the title, not content
                self._skip = 1
                return
            if self._capturing and self._level is not None and level <= self._level:
                self._flush_paragraph()
                self._done = True
                return
            self._flush_paragraph()
            self._heading = level
            return
        if not self._capturing:
            return
        if tag == "pre":
            self._flush_paragraph()
            self._pre += 1
            lang = next((c.split("-", 1)[1] for c in classes if c.startswith("language-")), None)
            self._pre_lang = lang or self._lang_hint
            self._lang_hint = None
        elif tag == "code" and self._pre:
            lang = next((c.split("-", 1)[1] for c in classes if c.startswith("language-")), None)
            self._pre_lang = self._pre_lang or lang
        elif tag == "code":
            self._buf.append("`")
        elif tag in ("ol", "ul"):
            self._flush_paragraph()
            self._lists.append((tag == "ol", []))
        elif tag == "li":
            self._flush_paragraph()
            if self._lists:
                self._lists[-1][1].append("")
        elif tag in ("p", "div", "blockquote", "table", "details", "summary", "dl", "dd", "dt"):
            self._flush_paragraph()
            lang = next((c.split("-", 1)[1] for c in classes if c.startswith("language-")), None)
            if lang:
                self._lang_hint = lang
        elif tag == "tr":
            self._flush_paragraph()
            self._cell_row = []
        elif tag in ("td", "th") and self._cell_row is not None:
            self._buf = []
        elif tag == "br":
            self._buf.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if self._done or not self._in_article:
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
        if tag == "article":
            self._flush_paragraph()
            self._in_article -= 1
            return
        if not self._capturing:
            return
        if tag in _HEADINGS and self._heading is not None:
            text = _clean("".join(self._buf))
            self._buf = []
            if text:
                self.parts.append(Part("heading", text=text))
            self._heading = None
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
            code = "".join(self._buf).strip("\n")
            self._buf = []
            if code.strip():
                if self._lists and self._lists[-1][1]:  # a command inside a step stays with the step
                    items = self._lists[-1][1]
                    items[-1] = f"{items[-1]}\n```\n{code}\n```"
                else:
                    self.parts.append(Part("code", text=code, language=self._pre_lang))
            self._pre_lang = None
        elif tag == "code" and not self._pre:
            self._buf.append("`")
        elif tag in ("ol", "ul"):
            self._flush_paragraph()
            ordered, items = self._lists.pop()
            items = [i for i in items if i]
            if items:
                if self._lists:  # a nested list: its items join the parent's last item
                    parent = self._lists[-1][1]
                    joined = "; ".join(items)
                    if parent:
                        parent[-1] = f"{parent[-1]} ({joined})"
                    else:
                        parent.append(joined)
                else:
                    self.parts.append(Part("steps" if ordered else "bullets", items=tuple(items)))
        elif tag in ("li", "p", "div", "blockquote", "details", "summary", "dd", "dt"):
            self._flush_paragraph()
        elif tag in ("td", "th") and self._cell_row is not None:
            self._cell_row.append(_clean("".join(self._buf)))
            self._buf = []
        elif tag == "tr" and self._cell_row is not None:
            row = " | ".join(c for c in self._cell_row)
            self._cell_row = None
            if row.strip(" |"):
                self.parts.append(Part("paragraph", text=row))

    def handle_data(self, data: str) -> None:
        if self._done or not self._in_article or self._skip or not self._capturing:
            return
        self._buf.append(data)
