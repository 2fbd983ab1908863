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

__all__ = ["DocsIndex", "DocHit", "Section", "SYNONYMS"]

_SCHEMA_VERSION = 2
_PATH_SEP = " \u203a "
_BOOSTS = {"title": 2.0, "heading": 1.5, "text": 1.0}
_TOKEN = re.compile(r"[A-Za-z0-9_]+")
_PHRASE = re.compile(r'"([^"]+)"')
_MAX_CORRECTIONS = 3
_MAX_PREFIX_EXPANSIONS = 8

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


@dataclass(frozen=True, slots=True)
class Section:
    """One searchable unit of a built site."""

    location: str  # as MkDocs' search index writes it: "runbook/#cache-stampede", "" for home
    page_title: str
    title: str
    text: str
    path: tuple[str, ...] = ()  # the headings above this one on its page, outermost first


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
    return b.build()


def _document(entity: str, s: Section) -> Any:
    headings = " ".join((s.page_title, *s.path, s.title))
    return tantivy.Document(
        entity=entity, location=s.location, page_title=s.page_title, title=s.title, heading=headings,
        path=_PATH_SEP.join(s.path), text=s.text, words=f"{headings} {s.text}",
    )


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
            if version != _SCHEMA_VERSION:  # an index from another release: start over, sites are rebuilt
                for child in path.iterdir():
                    if child.is_file():
                        child.unlink()
        self.schema = _schema()
        self.index = tantivy.Index(self.schema, path=str(path), reuse=True)
        marker.write_text(json.dumps({"schema": _SCHEMA_VERSION}))
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
                    snippet=_runs(snippets.snippet_from_doc(doc), doc.get_first("text") or ""),
                )
            )
        return hits

    def _term_groups(self, query: str, searcher: Any) -> list[set[str]]:
        """Per query term, the words that count as finding it (itself, corrections, synonyms)."""
        return [{term, *(w for w, _ in self._alternatives(term, searcher))} for term in _content_terms(query)]

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
        for term in terms:
            alternatives = self._alternatives(term, searcher)
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

    def _alternatives(self, term: str, searcher: Any) -> list[tuple[str, float]]:
        """The words to search for one query term, each with a weight."""
        vocab, by_len = self._vocabulary(searcher)
        out: dict[str, float] = {}
        if term in vocab:
            out[term] = 1.0
        for synonym in SYNONYMS.get(term, ()):
            for word in _TOKEN.findall(synonym.lower()):
                if word in vocab:
                    out.setdefault(word, 0.9)
        if term in vocab:
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
    if word in tokens:
        return True
    if len(word) < 4:
        return False
    stem = word[: max(4, len(word) - 3)]  # run/running, deploy/deployment, retry/retries
    return any(t.startswith(stem) for t in tokens)


def _runs(snippet: Any, text: str) -> tuple[tuple[str, bool], ...]:
    """A snippet as (text, matched) runs; the section's opening words when nothing matched the body."""
    fragment = snippet.fragment()
    if not fragment:
        return ((text[:200] + ("…" if len(text) > 200 else ""), False),)
    raw = fragment.encode()
    runs: list[tuple[str, bool]] = []
    pos = 0
    for rng in snippet.highlighted():
        start, end = rng.start, rng.end
        if start > pos:
            runs.append((raw[pos:start].decode(errors="replace"), False))
        runs.append((raw[start:end].decode(errors="replace"), True))
        pos = end
    if pos < len(raw):
        runs.append((raw[pos:].decode(errors="replace"), False))
    return tuple(runs)
