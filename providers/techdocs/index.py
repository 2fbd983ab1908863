"""Full-text search over every TechDocs section, on tantivy (Rust's Lucene-like engine).

Why tantivy: the ranking (BM25), English stemming, phrase and prefix queries and snippet
highlighting come from a mature engine instead of code of ours; it keeps its index in its
own files beside the docs store, so it works the same whether the catalog is in SQLite or
PostgreSQL, and one entity's sections are replaced by a delete-by-term plus an add. SQLite
FTS5 and PostgreSQL full-text search were the alternatives: neither has typo tolerance, and
they would differ between the two databases. Measurements are in docs/benchmarks.md.

One document per section (MkDocs' search index, a page without sections counts as one):
``entity`` and ``location`` (raw), ``title`` (the section heading), ``heading`` (the page title
and the section heading), ``text`` (the body) — all three stemmed English — and ``words``
(title, headings and body lowercased but not stemmed), which is the vocabulary for typo
correction and prefix expansion.

A query term that is in the vocabulary is searched as is (BM25 with a boost for title and
heading matches); a term that is not is replaced by its closest vocabulary words (Damerau
distance 1, or 2 for words of 8+ letters, the most frequent first) and by the words it is a
prefix of. Common abbreviations are expanded ("db" also finds "database"). ``"quoted words"``
must appear as a phrase.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tantivy
from rapidfuzz.distance import DamerauLevenshtein

__all__ = ["SCHEMA_VERSION", "CodeSpan", "DocsIndex", "DocHit", "Section", "SYNONYMS", "snippet_runs"]

#: The index's layout and the format of its texts (content.py's): a change to either bumps it. An
#: index of another version is emptied when opened, and the version is part of what a site was
#: built from (service.py), so every site is built and indexed again.
SCHEMA_VERSION = 3
_PATH_SEP = " \u203a "
_BOOSTS = {"title": 2.0, "heading": 1.5, "text": 1.0}
_TOKEN = re.compile(r"[A-Za-z0-9_]+")
_PHRASE = re.compile(r'"([^"]+)"')
_MAX_CORRECTIONS = 3
_MAX_PREFIX_EXPANSIONS = 8
#: the shortest words a compound is split into ("roll back", "set up", "log in")
_MIN_PART = 3
_MIN_TAIL = 2
#: the analyzer of the stemmed fields (tantivy's en_stem), to ask the index for a word's stem
_STEMMER = (
    tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
    .filter(tantivy.Filter.remove_long(40))
    .filter(tantivy.Filter.lowercase())
    .filter(tantivy.Filter.stemmer("english"))
    .build()
)

#: Words that say nothing about which section is meant ("how do I ...", "is there a ...").
STOPWORDS = frozenset(
    "a an and are as at be by can do does for from has have how i if in into is it its of on or our own "
    "should so that the their there this to was we what when where which who why will with you your".split()
)

#: What people type -> what docs say. Both directions are searched.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "db": ("database",),
    "dbs": ("databases",),
    "k8s": ("kubernetes",),
    "kube": ("kubernetes",),
    "auth": ("authentication", "authorization"),
    "authn": ("authentication",),
    "authz": ("authorization",),
    "creds": ("credentials", "password"),
    "pw": ("password",),
    "pwd": ("password",),
    "prod": ("production",),
    "stg": ("staging",),
    "env": ("environment",),
    "envs": ("environments",),
    "config": ("configuration",),
    "cfg": ("configuration", "config"),
    "repo": ("repository",),
    "repos": ("repositories",),
    "deploy": ("deployment",),
    "rollback": ("roll", "undo"),
    "msg": ("message",),
    "txn": ("transaction", "transactions"),
    "txns": ("transactions",),
    "var": ("variable",),
    "vars": ("variables",),
    "msgs": ("messages",),
    "perf": ("performance", "latency"),
    "infra": ("infrastructure",),
    "pg": ("postgres", "postgresql"),
    "postgres": ("postgresql", "pg"),
    "mq": ("queue",),
    "q": ("queue",),
    "err": ("error",),
    "errs": ("errors",),
    "svc": ("service",),
    "docs": ("documentation",),
    "doc": ("documentation",),
    "admin": ("administrator",),
    "cert": ("certificate",),
    "certs": ("certificates",),
    "dns": ("domain",),
    "oom": ("memory",),
    "cpu": ("processor",),
    "mem": ("memory",),
    "ttl": ("expiry", "expire"),
    "dashboard": ("grafana",),
    "alert": ("alarm", "page"),
    "oncall": ("on-call",),
    "pager": ("pagerduty",),
    "restart": ("rollout",),
    "slow": ("latency",),
    "down": ("outage", "unavailable"),
    "outage": ("down", "unavailable"),
}


#: Where a piece of code lies in a section's text, in characters: (start of its opening mark,
#: start of the code, end of the code, end of its closing mark). Inline code is marked with
#: backticks, a code block with fences on lines of their own (```bash ... ```).
CodeSpan = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class Section:
    """One searchable unit of a built site."""

    location: str  # as MkDocs' search index writes it: "runbook/#cache-stampede", "" for home
    page_title: str
    title: str
    text: str
    path: tuple[str, ...] = ()  # the headings above this one on its page, outermost first
    code: tuple[CodeSpan, ...] = ()  # the code in ``text``, in order


@dataclass(frozen=True, slots=True)
class DocHit:
    entity: str
    location: str
    page_title: str
    title: str
    path: tuple[str, ...]
    score: float
    snippet: tuple[tuple[str, bool], ...]  # (text, matched) runs


def _schema() -> Any:
    b = tantivy.SchemaBuilder()
    b.add_text_field("entity", stored=True, tokenizer_name="raw")
    b.add_text_field("location", stored=True, tokenizer_name="raw")
    b.add_text_field("page_title", stored=True, tokenizer_name="en_stem")
    b.add_text_field("title", stored=True, tokenizer_name="en_stem")
    b.add_text_field("heading", stored=False, tokenizer_name="en_stem")
    b.add_text_field("path", stored=True, tokenizer_name="raw", index_option="basic")
    b.add_text_field("text", stored=True, tokenizer_name="en_stem")
    b.add_text_field("words", stored=False, tokenizer_name="default", index_option="freq")
    b.add_unsigned_field("code", stored=True, indexed=False)  # the CodeSpans, flattened
    return b.build()


def _document(entity: str, s: Section) -> Any:
    headings = " ".join((s.page_title, *s.path, s.title))
    return tantivy.Document(
        entity=entity, location=s.location, page_title=s.page_title, title=s.title, heading=headings,
        path=_PATH_SEP.join(s.path), text=s.text, words=f"{headings} {s.text}",
        code=[n for span in s.code for n in span],
    )


def _code(doc: Any) -> tuple[CodeSpan, ...]:
    flat = [int(n) for n in doc.get_all("code")]
    return tuple((flat[i], flat[i + 1], flat[i + 2], flat[i + 3]) for i in range(0, len(flat) - 3, 4))


def _path(doc: Any) -> tuple[str, ...]:
    value = doc.get_first("path") or ""
    return tuple(value.split(_PATH_SEP)) if value else ()


def _escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace('"', '\\"')


class DocsIndex:
    """The on-disk section index of every built site, shared by the processes on one data dir."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        marker = path / "callboard-index.json"
        if marker.exists():
            try:
                version = json.loads(marker.read_text()).get("schema")
            except (OSError, ValueError):
                version = None
            if version != SCHEMA_VERSION:  # an index from another release: start over, sites are rebuilt
                for child in path.iterdir():
                    if child.is_file():
                        child.unlink()
        self.schema = _schema()
        self.index = tantivy.Index(self.schema, path=str(path), reuse=True)
        marker.write_text(json.dumps({"schema": SCHEMA_VERSION}))
        self._lock = threading.Lock()
        #: (stamp, words -> document count, words by length): replaced whole, never changed in
        #: place, so searches in several threads each read one consistent snapshot
        self._vocab: tuple[Any, dict[str, int], dict[int, list[str]]] | None = None

    # --- writing ----------------------------------------------------------------------------

    def replace_many(self, batch: Sequence[tuple[str, Sequence[Section]]]) -> None:
        """Swap each entity's sections for the given ones, all in one commit."""
        self._write(batch, ())

    def remove(self, entities: Iterable[str]) -> None:
        self._write((), entities)

    def _write(self, batch: Sequence[tuple[str, Sequence[Section]]], removed: Iterable[str]) -> None:
        removed = list(removed)
        if not batch and not removed:
            return
        with self._lock:
            writer = self.index.writer(heap_size=50_000_000, num_threads=1)
            try:
                for entity in removed:
                    writer.delete_documents_by_term("entity", entity)
                for entity, sections in batch:
                    writer.delete_documents_by_term("entity", entity)
                    for s in sections:
                        writer.add_document(_document(entity, s))
                writer.commit()
                writer.wait_merging_threads()
            except BaseException:
                writer.rollback()
                raise
        self.index.reload()

    # --- reading ----------------------------------------------------------------------------

    def sections(self, entity: str, limit: int = 1000) -> list[Section]:
        """An entity's sections in index order (page order as MkDocs wrote them)."""
        searcher = self.index.searcher()
        query = tantivy.Query.term_query(self.schema, "entity", entity)
        hits = searcher.search(query, limit, order_by_field=None).hits if limit else []
        out = []
        for _, address in sorted(hits, key=lambda h: (h[1].segment_ord, h[1].doc)):
            doc = searcher.doc(address)
            out.append(
                Section(
                    location=doc.get_first("location") or "",
                    page_title=doc.get_first("page_title") or "",
                    title=doc.get_first("title") or "",
                    text=doc.get_first("text") or "",
                    path=_path(doc),
                    code=_code(doc),
                )
            )
        return out

    def count(self) -> int:
        return int(self.index.searcher().num_docs)

    def search(self, query: str, *, entity: str | None = None, limit: int = 5) -> list[DocHit]:
        searcher = self.index.searcher()
        built = self._query(query, searcher)
        if built is None:
            return []
        if entity is not None:
            built = tantivy.Query.boolean_query(
                [
                    (tantivy.Occur.Must, built),
                    (tantivy.Occur.Must, tantivy.Query.term_query(self.schema, "entity", entity)),
                ]
            )
        pool = max(limit * 10, 50)
        result = searcher.search(built, pool)
        if not result.hits:
            return []
        groups = self._term_groups(query, searcher)
        ranked = []
        for score, address in result.hits:
            doc = searcher.doc(address)
            ranked.append((float(score) * _coverage(groups, doc) ** 2, doc))
        ranked.sort(key=lambda pair: -pair[0])
        snippets = tantivy.SnippetGenerator.create(searcher, built, self.schema, "text")
        snippets.set_max_num_chars(220)
        hits = []
        for score, doc in ranked[:limit]:
            hits.append(
                DocHit(
                    entity=doc.get_first("entity") or "",
                    location=doc.get_first("location") or "",
                    page_title=doc.get_first("page_title") or "",
                    title=doc.get_first("title") or "",
                    path=_path(doc),
                    score=score,
                    snippet=_runs(snippets.snippet_from_doc(doc), doc.get_first("text") or "", _code(doc)),
                )
            )
        return hits

    def _term_groups(self, query: str, searcher: Any) -> list[set[str]]:
        """Per query term, the words that count as finding it (itself, corrections, synonyms)."""
        joins = self._joins(query, searcher)
        return [{term, *(w for w, _ in self._alternatives(term, searcher, joins))} for term in _content_terms(query)]

    def _joins(self, text: str, searcher: Any) -> dict[str, list[str]]:
        """Two words of the query that some section writes as one ("roll back" -> "rollback",
        "log in" -> "login"): each of the two gets the joined word as an alternative."""
        vocab, _ = self._vocabulary(searcher)
        words = _TOKEN.findall(text.lower())
        out: dict[str, list[str]] = {}
        for first, second in zip(words, words[1:]):
            joined = first + second
            if len(first) >= 2 and len(second) >= 2 and self._indexed(joined, vocab, searcher):
                out.setdefault(first, []).append(joined)
                out.setdefault(second, []).append(joined)
        return out

    # --- query building ---------------------------------------------------------------------

    def _query(self, text: str, searcher: Any) -> Any | None:
        clauses: list[tuple[Any, Any]] = []
        fields = list(_BOOSTS)
        for phrase in _PHRASE.findall(text):
            words = _TOKEN.findall(phrase.lower())
            if len(words) > 1:
                parsed = self.index.parse_query(
                    '"' + _escape(" ".join(words)) + '"', fields, field_boosts=_BOOSTS
                )
                clauses.append((tantivy.Occur.Must, parsed))
            elif words:
                text += " " + words[0]
        rest = _PHRASE.sub(" ", text)
        terms = _content_terms(rest)
        joins = self._joins(rest, searcher)
        for term in terms:
            alternatives = self._alternatives(term, searcher, joins)
            if not alternatives:
                continue
            parts = [
                (tantivy.Occur.Should, tantivy.Query.boost_query(self._term_query(word, fields), weight))
                for word, weight in alternatives
            ]
            clauses.append((tantivy.Occur.Should, tantivy.Query.boolean_query(parts)))
        if not clauses:
            return None
        return tantivy.Query.boolean_query(clauses)

    def _term_query(self, word: str, fields: list[str]) -> Any:
        return self.index.parse_query(f'"{_escape(word)}"', fields, field_boosts=_BOOSTS)

    def _indexed(self, word: str, vocab: dict[str, int], searcher: Any) -> bool:
        """True when some section has ``word`` in any form the stemmed fields take as the same
        (restart ~ restarting ~ restarts)."""
        if word in vocab:
            return True
        stem = _stem(word)
        return any(searcher.doc_freq(field, stem) for field in _BOOSTS)

    def _alternatives(
        self, term: str, searcher: Any, joins: dict[str, list[str]] | None = None
    ) -> list[tuple[str, float]]:
        """The words to search for one query term, each with a weight: the term in any word form,
        its synonyms, the two words it joins ("rollback" finds "rolling back"), then corrections
        and completions of a term no section has."""
        vocab, by_len = self._vocabulary(searcher)
        out: dict[str, float] = {}
        found = self._indexed(term, vocab, searcher)
        if found:
            out[term] = 1.0
        for synonym in SYNONYMS.get(term, ()):
            for word in _TOKEN.findall(synonym.lower()):
                if self._indexed(word, vocab, searcher):
                    out.setdefault(word, 0.9)
        for word in (joins or {}).get(term, ()):
            out.setdefault(word, 0.9)
        for split in range(_MIN_PART, len(term) - _MIN_TAIL + 1):
            head, tail = term[:split], term[split:]
            if self._indexed(head, vocab, searcher) and self._indexed(tail, vocab, searcher):
                out.setdefault(f"{head} {tail}", 0.9)  # a phrase: the two words side by side
        if found:
            return list(out.items())
        if len(term) >= 4:
            for word in self._corrections(term, vocab, by_len):
                out.setdefault(word, 0.8)
            for word, _ in searcher.terms_with_prefix("words", term, limit=_MAX_PREFIX_EXPANSIONS):
                out.setdefault(word, 0.7)
        return list(out.items())

    def _corrections(self, term: str, vocab: dict[str, int], by_len: dict[int, list[str]]) -> list[str]:
        limit = 1 if len(term) < 8 else 2
        found: list[tuple[int, int, str]] = []
        for length in range(len(term) - limit, len(term) + limit + 1):
            for word in by_len.get(length, ()):
                d = DamerauLevenshtein.distance(term, word, score_cutoff=limit)
                if d <= limit:
                    found.append((d, -vocab[word], word))
        found.sort()
        return [w for _, _, w in found[:_MAX_CORRECTIONS]]

    def _vocabulary(self, searcher: Any) -> tuple[dict[str, int], dict[int, list[str]]]:
        stamp = (searcher.num_docs, searcher.num_segments)
        cached = self._vocab
        if cached is not None and cached[0] == stamp:
            return cached[1], cached[2]
        pairs = searcher.terms_with_prefix("words", "")
        vocab = {w: int(n) for w, n in pairs if not w.isdigit() or len(w) < 8}
        by_len: dict[int, list[str]] = {}
        for w in vocab:
            by_len.setdefault(len(w), []).append(w)
        self._vocab = (stamp, vocab, by_len)
        return vocab, by_len


def _stem(word: str) -> str:
    tokens = _STEMMER.analyze(word)
    return str(tokens[0]) if tokens else word


def _content_terms(text: str) -> list[str]:
    """The query's words without stop words (all of them when that would leave nothing)."""
    words = list(dict.fromkeys(t.lower() for t in _TOKEN.findall(text)))
    content = [w for w in words if w not in STOPWORDS]
    return content or words


def _coverage(groups: list[set[str]], doc: Any) -> float:
    """The share of the query's terms a section has somewhere (title, page, body, entity name):
    a section that has every word beats one that repeats a single word (Lucene's old "coord")."""
    if not groups:
        return 1.0
    entity = (doc.get_first("entity") or "").rpartition("/")[2]
    blob = " ".join((doc.get_first("title") or "", doc.get_first("page_title") or "",
                     doc.get_first("text") or "", entity.replace("-", " "))).lower()
    tokens = set(_TOKEN.findall(blob))
    found = 0
    for group in groups:
        if any(_matches(word, tokens) for word in group):
            found += 1
    return found / len(groups)


def _matches(word: str, tokens: set[str]) -> bool:
    if " " in word:  # the words a compound was split into
        return all(_matches(part, tokens) for part in word.split())
    if word in tokens:
        return True
    if len(word) < 4:
        return False
    stem = word[: max(4, len(word) - 3)]  # run/running, deploy/deployment, retry/retries
    return any(t.startswith(stem) for t in tokens)


#: Inline code (a code block) shorter than this is never cut by a snippet: it grows to hold it whole.
_WHOLE_CODE = 400
_WHOLE_BLOCK = 160
_CHUNK_END = ".,;:!?)]}'\""
_CHUNK_START = "([{'\""
_UNMARKABLE = re.compile(r"[/:=@\\$<>|&~%#?]")
_SNIPPET_CHARS = 220


def _runs(snippet: Any, text: str, code: tuple[CodeSpan, ...]) -> tuple[tuple[str, bool], ...]:
    """A snippet as (text, matched) runs; the section's opening words when nothing matched the body."""
    fragment = snippet.fragment()
    start = text.find(fragment) if fragment else -1
    if start < 0:
        return snippet_runs(text, code, 0, min(len(text), _SNIPPET_CHARS - 20), ())
    raw = fragment.encode()
    marks = [(start + len(raw[: r.start].decode(errors="replace")), start + len(raw[: r.end].decode(errors="replace")))
             for r in snippet.highlighted()]
    return snippet_runs(text, code, start, start + len(fragment), marks)


def snippet_runs(
    text: str, code: Sequence[CodeSpan], start: int, end: int, marks: Sequence[tuple[int, int]]
) -> tuple[tuple[str, bool], ...]:
    """``text[start:end]`` as (text, matched) runs, with ``marks`` (character ranges) matched.

    Nothing is cut inside a word or a line of code, and nothing is marked where a mark would
    break what a person copies: code, and words of a URL, a path or an assignment in prose (a
    word joined by ``-`` ``.`` ``_`` is marked whole: **blob-gateway**). The window grows to hold
    inline code whole (up to ``_WHOLE_CODE`` characters) and a small code block whole; a longer
    one is cut at line ends and its fences are put back around the lines shown. "…" says where
    text was left out."""
    start, end = max(0, start), min(len(text), end)
    if 0 < start < len(text) and not text[start - 1].isspace():  # a cut inside a word: back to its start
        start = max(text.rfind(" ", 0, start), text.rfind("\n", 0, start)) + 1
    if 0 < end < len(text) and not text[end].isspace():
        ends = [i for i in (text.find(" ", end), text.find("\n", end)) if i >= 0]
        end = min(ends) if ends else len(text)
    lead = trail = ""
    for outer, inner, inner_end, outer_end in code:
        block = text[inner - 1 : inner] == "\n"
        whole = outer_end - outer <= (_WHOLE_BLOCK if block else _WHOLE_CODE)
        if outer < start < outer_end:
            if whole or start <= inner or start >= inner_end:
                start = outer
            else:
                line = text.rfind("\n", inner, start) if block else -1
                start = line + 1 if line >= 0 else inner if block else start
                lead = text[outer:inner]
        if outer < end < outer_end:
            if whole or end <= inner or end >= inner_end:
                end = outer_end
            else:
                line = text.find("\n", end, inner_end) if block else -1
                end = line if line >= 0 else inner_end if block else end
                trail = text[inner_end:outer_end]
    spans = [(outer, outer_end) for outer, _, _, outer_end in code]
    shown = _prose_marks(text, spans, [(max(a, start), min(b, end)) for a, b in marks if a < end and b > start])
    shown = [(max(a, start), min(b, end)) for a, b in shown]
    runs: list[tuple[str, bool]] = []
    if lead:
        runs.append((lead, False))
    pos = start
    for a, b in shown:
        if a < pos:
            continue
        if a > pos:
            runs.append((text[pos:a], False))
        runs.append((text[a:b], True))
        pos = b
    if pos < end:
        runs.append((text[pos:end], False))
    if trail:
        runs.append((trail, False))
    runs = [(t, m) for t, m in runs if t]
    if not runs:
        return ()
    if not runs[0][1]:
        runs[0] = (runs[0][0].lstrip(), False)
    if not runs[-1][1]:
        runs[-1] = (runs[-1][0].rstrip(), False)
    # "…" where text was left out, on a line of its own beside a code block's fence
    if start > 0:
        runs.insert(0, ("…\n" if runs[0][0].startswith("```") or lead.endswith("\n") else "… ", False))
    if end < len(text):
        fence = trail.startswith("\n") or any(oe == end and text[o:].startswith("```") for o, oe in spans)
        runs.append(("\n…" if fence else " …", False))
    return tuple((t, m) for t, m in runs if t)


def _prose_marks(text: str, spans: list[tuple[int, int]], marks: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The marks to show: none in code; none in a word of a URL, a path, an assignment or an
    option; a word joined by ``-`` ``.`` ``_`` marked whole."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(marks):
        if any(o < b and a < oe for o, oe in spans):
            continue
        left, right = a, b
        while left > 0 and not text[left - 1].isspace() and text[left - 1] != "`":
            left -= 1
        while right < len(text) and not text[right].isspace() and text[right] != "`":
            right += 1
        while right > b and text[right - 1] in _CHUNK_END:
            right -= 1
        while left < a and text[left] in _CHUNK_START:
            left += 1
        chunk = text[left:right]
        if chunk.startswith("-") or _UNMARKABLE.search(chunk):
            continue  # --flag, a/path, https://…, key=value, user@host: copied as written
        if out and out[-1][1] >= left:
            out[-1] = (out[-1][0], max(out[-1][1], right))
        else:
            out.append((left, right))
    return out
