"""The in-memory entity search index: exact lookups first, then typo-tolerant fuzzy matching.

Built once from storage, then kept current in place from each sync's change feed
(``IndexChange``), never rebuilt per change.

How a query is answered:
1. **Exact**: a full or partial ref (``component:default/x``, ``default/x``,
   ``component:x``), a name or a title, compared after normalisation (case,
   ``-``/``_``/``.``/space all alike).
2. **Fuzzy**: a trigram inverted index picks the few hundred entities sharing
   the most trigrams with the query (one ``numpy.bincount`` over the posting
   lists, not a loop over every name), then rapidfuzz scores those candidates
   (``WRatio``) and measures their edit distance (Damerau-Levenshtein, on the
   text and on its sorted words).
3. **Confidence**: the best candidate is taken only when it is clearly ahead:
   it alone has the smallest edit distance and that distance is within what a
   typo explains, or the query is a part of exactly one name. Otherwise the
   result is ambiguous and the caller offers the alternatives.
4. **Similarity threshold**: a fuzzy candidate is offered only when it is
   *close* to the query (``close``): within a typo of it (whole, or a run of
   its words), the query starting one of its words (``pay`` → ``payments-team``),
   the whole name standing in the query as words (``is payment-service down``),
   or one of the query's own words (not a kind word like ``service``) found,
   typos allowed, among its words. A score alone never offers one: trigram and
   ``WRatio`` overlap puts unrelated names at the top of a list when nothing
   matches, and "not found" must then say so.

Pickers ask on every keystroke (``complete``), and what is typed there is most often
the start of a name, a title or one of their words (``serv`` for ``payment-service``).
A word-prefix index answers that without the fuzzy machinery: one entry per word
start of each normalized name and title, sorted by the text from that word on, so
the entries a prefix matches are one contiguous run found by two bisections. The run
is ranked (exact name or title, then those starting with the query, then those with
a later word starting with it; shorter first, then alphabetically from the matched
word on) in Python when it is short and with numpy when it is long. When no word
starts with the query (a typo, a piece from the middle of a word), the answer is the
fuzzy search's. Prefix hits are not padded with fuzzy ones: a typo that is still the
start of some name is rare, and padding would cost the fuzzy search on every keystroke
that has narrowed the list to a few (a third of them when typing names at 100k).
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import DamerauLevenshtein

from .model import parse_ref, RefParseError

__all__ = ["Candidate", "SearchIndex", "SearchResult", "normalize"]

_SEP = re.compile(r"[\s_\-.]+")
_CANDIDATES = 256

# A word-prefix entry is one int: from the low bits, the offset of the word in the text (8 bits;
# words starting past ``_MAX_OFFSET``, in long titles, are left to the fuzzy search), the text's
# length (8 bits, capped: for ranking only), whether the word is a later one (not the text's start),
# whether the text is the title, then the slot. Bits 8 to 16 are thus the rank of a hit before its
# place in the run: a text's start before a later word, a shorter text before a longer one.
_MAX_OFFSET = 255
_LATER_BIT = 1 << 16
_TITLE_BIT = 1 << 17
_SLOT_SHIFT = 18
_RANK_SHIFT = 8
_RANK_MASK = 0x1FF
_NO_RANK = 1 << 62
#: A prefix run up to this long is ranked in Python; a longer one with numpy.
_SCAN = 128
#: Up to this many new word-prefix entries are put in place one by one (see ``_settle``).
_INSORT = 16


def normalize(text: str) -> str:
    """Lower case, and ``-``, ``_``, ``.`` and spaces all one space."""
    return _SEP.sub(" ", text.lower()).strip()


def _grams(norm: str) -> set[str]:
    padded = f" {norm} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def _sorted_words(norm: str) -> str:
    return " ".join(sorted(norm.split()))


#: Words that say what kind of thing a name is, not which one: sharing only these is no likeness.
_GENERIC_WORDS = frozenset({
    "service", "services", "team", "teams", "api", "apis", "system", "systems", "component", "components", "group",
    "domain", "resource", "web", "app", "worker", "db", "database", "the", "for", "and", "with", "this", "that",
    "what", "who", "owner", "owns",
})


def allowed_typos(length: int) -> int:
    """Edits a typo can explain in a query of this length."""
    if length <= 4:
        return 1 if length >= 3 else 0
    if length <= 12:
        return 2
    return max(3, length // 6)


@dataclass(frozen=True, slots=True)
class Candidate:
    key: str
    kind: str
    name: str
    title: str | None
    score: float
    distance: int
    exact: bool = False


@dataclass(frozen=True, slots=True)
class SearchResult:
    query: str
    candidates: tuple[Candidate, ...]
    confident: bool

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    @property
    def match(self) -> Candidate | None:
        """The entity meant, when the index is sure; else None."""
        return self.candidates[0] if self.confident and self.candidates else None


class SearchIndex:
    """Entity names and titles, searchable by ref, exact name/title, and fuzzily."""

    def __init__(self) -> None:
        self._keys: list[str | None] = []
        self._names: list[str] = []
        self._titles: list[str | None] = []
        self._norms: list[str] = []
        self._title_norms: list[str | None] = []
        self._slots: dict[str, int] = {}
        self._dead = 0
        self._exact: dict[str, list[int]] = {}
        self._postings: dict[str, array[int]] = {}
        # the word-prefix index (``complete``): entries sorted by ``_suffix``, plus those added
        # since the last ``_settle``; dead slots stay in it (skipped) until ``_compact``
        self._words: array[int] = array("q")
        self._pending: list[int] = []
        self._kind_ids: dict[str, int] = {}
        self._kind_codes: array[int] = array("i")  # per slot; -1 once removed

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, key: str) -> bool:
        return key in self._slots

    # --- maintenance ---------------------------------------------------------------------

    def add(self, key: str, name: str, title: str | None = None) -> None:
        """Add or replace one entity (``key`` is the canonical ``kind:ns/name``)."""
        if key in self._slots:
            old = self._slots[key]
            if self._names[old] == name and self._titles[old] == title:
                return
            self.remove(key)
        slot = len(self._keys)  # slots are never reused: removed ones stay in postings until compaction
        norm = normalize(name)
        tnorm = normalize(title) if title else None
        if slot == len(self._keys):
            self._keys.append(key)
            self._names.append(name)
            self._titles.append(title)
            self._norms.append(norm)
            self._title_norms.append(tnorm)
        else:
            self._keys[slot] = key
            self._names[slot] = name
            self._titles[slot] = title
            self._norms[slot] = norm
            self._title_norms[slot] = tnorm
        self._slots[key] = slot
        code = self._kind_ids.setdefault(key.partition(":")[0], len(self._kind_ids))
        if slot == len(self._kind_codes):
            self._kind_codes.append(code)
        else:
            self._kind_codes[slot] = code
        self._pending.extend(_word_entries(slot, norm, 0))
        if tnorm and tnorm != norm:
            self._pending.extend(_word_entries(slot, tnorm, _TITLE_BIT))
        for text in {norm, tnorm} - {None}:
            assert text is not None
            self._exact.setdefault(text, []).append(slot)
        grams = _grams(norm) | (_grams(tnorm) if tnorm else set())
        postings = self._postings
        for g in grams:
            bucket = postings.get(g)
            if bucket is None:
                postings[g] = array("i", (slot,))
            else:
                bucket.append(slot)

    def remove(self, key: str) -> None:
        slot = self._slots.pop(key, None)
        if slot is None:
            return
        norm, tnorm = self._norms[slot], self._title_norms[slot]
        for text in {norm, tnorm} - {None}:
            assert text is not None
            slots = self._exact.get(text)
            if slots and slot in slots:
                slots.remove(slot)
                if not slots:
                    del self._exact[text]
        # Lazy deletion: postings keep the dead slot (queries skip it); removing it from every
        # trigram's posting list would cost a scan of lists holding most of the catalog.
        self._keys[slot] = None
        self._kind_codes[slot] = -1
        self._dead += 1
        if self._dead > max(1000, len(self._slots) // 4):
            self._compact()

    def _compact(self) -> None:
        """Rebuild without the dead slots."""
        live = [(k, self._names[s], self._titles[s]) for k, s in self._slots.items()]
        self.__init__()  # type: ignore[misc]
        for key, name, title in live:
            self.add(key, name, title)
        self._settle()

    def update(self, upserted: Iterable[tuple[str, str, str | None]], removed: Iterable[str]) -> None:
        """Apply one change (or load many): the word-prefix index is settled once, at the end."""
        for key in removed:
            self.remove(key)
        for key, name, title in upserted:
            self.add(key, name, title)
        self._settle()

    def _suffix(self, entry: int) -> tuple[str, ...]:
        """The sort key of a word-prefix entry: its text from the word on, then the whole text."""
        slot = entry >> _SLOT_SHIFT
        text = self._title_norms[slot] if entry & _TITLE_BIT else self._norms[slot]
        assert text is not None
        return text[entry & _MAX_OFFSET:], text

    def _settle(self) -> None:
        """Put the pending word-prefix entries in their places. A few: one by one (a bisection and a
        move each). More: sorted among themselves, their places found by bisection, and the array
        copied once around them. Very many (a load, a compaction, a big sync): one sort of all."""
        pending, self._pending = self._pending, []
        words = self._words
        if len(pending) <= _INSORT:
            for entry in pending:
                insort(words, entry, key=self._suffix)
        elif len(pending) <= len(words) // 8:
            pending.sort(key=self._suffix)
            merged: array[int] = array("q")
            start = 0
            for entry in pending:
                at = bisect_right(words, self._suffix(entry), start, key=self._suffix)
                merged += words[start:at]
                merged.append(entry)
                start = at
            merged += words[start:]
            self._words = merged
        else:
            self._words = array("q", sorted([*words, *pending], key=self._suffix))

    # --- queries -------------------------------------------------------------------------

    def _candidate(self, slot: int, score: float, distance: int, exact: bool) -> Candidate:
        key = self._keys[slot]
        assert key is not None
        # positional: a picker builds twenty of these a keystroke, and keywords cost a third more
        return Candidate(key, key.partition(":")[0], self._names[slot], self._titles[slot], score, distance, exact)

    def _ref_lookup(self, query: str, kinds: frozenset[str] | None) -> list[int]:
        q = query.strip()
        if ":" not in q and "/" not in q:
            return []
        try:
            if ":" in q:
                ref = parse_ref(q)
                keys = [ref.key]
            else:
                ns, _, name = q.partition("/")
                keys = [k for k in self._exact_keys(normalize(name)) if k.split(":", 1)[1] == f"{ns}/{name}".lower()]
        except RefParseError:
            return []
        slots = [self._slots[k] for k in keys if k in self._slots]
        return [s for s in slots if self._kind_ok(s, kinds)]

    def _exact_keys(self, norm: str) -> list[str]:
        return [k for s in self._exact.get(norm, []) if (k := self._keys[s]) is not None]

    def _kind_ok(self, slot: int, kinds: frozenset[str] | None) -> bool:
        if kinds is None:
            return True
        key = self._keys[slot]
        return key is not None and key.split(":", 1)[0] in kinds

    def _begin(self, query: str, kinds: Iterable[str] | None) -> tuple[SearchResult | None, str, frozenset[str] | None]:
        """What every query starts with: (the answer already, when ``query`` is a ref of an entity
        here or normalizes to nothing; the normalized query; the kinds, lower-case)."""
        kind_set = frozenset(k.lower() for k in kinds) if kinds else None
        slots = self._ref_lookup(query, kind_set)
        if slots:
            cands = tuple(self._candidate(s, 100.0, 0, True) for s in slots)
            return SearchResult(query, cands, confident=len(cands) == 1), "", kind_set
        q = normalize(query)
        return (None if q else SearchResult(query, (), False)), q, kind_set

    def search(self, query: str, *, kinds: Iterable[str] | None = None, limit: int = 8) -> SearchResult:
        """Find the entity ``query`` names. ``kinds`` (lower-case) restricts the kinds."""
        done, q, kind_set = self._begin(query, kinds)
        if done is not None:
            return done
        exact = [s for s in dict.fromkeys(self._exact.get(q, [])) if self._kind_ok(s, kind_set)]
        if exact:
            cands = tuple(self._candidate(s, 100.0, 0, True) for s in exact)
            return SearchResult(query, cands[:limit], confident=len(cands) == 1)
        return self._fuzzy(query, q, kind_set, limit)

    def complete(self, query: str, *, kinds: Iterable[str] | None = None, limit: int = 20) -> SearchResult:
        """What a picker offers while ``query`` is being typed, best first.

        A ref (``kind:ns/name``) answers as in ``search``. Otherwise: the entities whose name or
        title is the query (``exact``), then those whose name or title starts with it, then those
        with a later word starting with it (``serv`` for ``payment-service``); within each, shorter
        texts first, then alphabetically from the matched word on. When none of them is found,
        the answer is ``search``'s (a typo, a piece from inside a word). For a completion,
        ``score`` is the share of the text typed and ``distance`` the characters not typed;
        ``confident`` only for a single exact match (the rest is still being typed).
        """
        if limit < 1:
            raise ValueError(f"complete: limit must be at least 1, not {limit}")
        done, q, kind_set = self._begin(query, kinds)
        if done is not None:
            return done
        if self._pending:
            self._settle()
        exact = [s for s in dict.fromkeys(self._exact.get(q, [])) if self._kind_ok(s, kind_set)][:limit]
        found = [self._candidate(s, 100.0, 0, True) for s in exact]
        for slot, length in self._prefixed(q, kind_set, limit - len(found), set(exact)):
            typed = min(len(q), length)  # lengths are capped (``_MAX_OFFSET``)
            found.append(self._candidate(slot, 100.0 * typed / length, length - typed, False))
        if not found:
            return self._fuzzy(query, q, kind_set, limit)
        return SearchResult(query, tuple(found), confident=len(exact) == 1)

    def _prefixed(self, q: str, kinds: frozenset[str] | None, limit: int, skip: set[int]) -> list[tuple[int, int]]:
        """Up to ``limit`` (slot, length of the text matched) whose name or title has a word starting
        with ``q``, ranked, one per entity, none of ``skip``."""
        if limit <= 0:
            return []
        words = self._words
        start: tuple[str, ...] = (q,)  # before every (suffix, text) whose suffix starts with q
        lo = bisect_left(words, start, key=self._suffix)
        if q[-1] < "\U0010ffff":
            end: tuple[str, ...] = (q[:-1] + chr(ord(q[-1]) + 1),)  # and after all of them
            hi = bisect_left(words, end, lo, key=self._suffix)
        else:  # no successor string to bisect for: walk
            hi = lo
            while hi < len(words) and self._suffix(words[hi])[0].startswith(q):
                hi += 1
        codes = None if kinds is None else {self._kind_ids[k] for k in kinds if k in self._kind_ids}
        if codes is not None and not codes:
            return []
        if hi - lo <= _SCAN:
            return self._rank_few(lo, hi, codes, limit, skip)
        return self._rank_many(lo, hi, codes, limit, skip)

    def _rank_few(self, lo: int, hi: int, codes: set[int] | None, limit: int, skip: set[int]) -> list[tuple[int, int]]:
        """``_prefixed`` for a short run ``words[lo:hi]``: a scan in Python."""
        kind_codes = self._kind_codes
        best: dict[int, int] = {}  # slot -> rank
        for pos, entry in enumerate(self._words[lo:hi]):
            slot = entry >> _SLOT_SHIFT
            code = kind_codes[slot]
            if code < 0 or (codes is not None and code not in codes) or slot in skip:
                continue
            rank = (entry >> _RANK_SHIFT & _RANK_MASK) << 32 | pos
            if rank < best.get(slot, _NO_RANK):
                best[slot] = rank
        ranked = sorted(best.items(), key=lambda kv: kv[1])[:limit]
        return [(slot, rank >> 32 & _MAX_OFFSET) for slot, rank in ranked]

    def _rank_many(self, lo: int, hi: int, codes: set[int] | None, limit: int, skip: set[int]) -> list[tuple[int, int]]:
        """``_prefixed`` for a long run ``words[lo:hi]``: the kinds filter and the ranks in numpy, then a
        partial sort for the best few (thousands of hits for a common word's first letters)."""
        # views over the arrays, dropped before returning (an array exporting a buffer cannot grow)
        run = np.frombuffer(self._words, dtype=np.int64)[lo:hi]
        kind_of = np.frombuffer(self._kind_codes, dtype=np.int32)[run >> _SLOT_SHIFT]
        if codes is None:
            live = kind_of >= 0
        else:
            live = np.zeros(len(run), dtype=bool)
            for code in codes:
                live |= kind_of == code
        pos = np.flatnonzero(live)
        entries = run[pos]
        ranks = (entries >> _RANK_SHIFT & _RANK_MASK) << 32 | pos
        want = limit + len(skip) + 8  # an entity can have more than one entry in the run
        while True:
            if want < len(ranks):
                top = np.partition(ranks, want - 1)[:want]
                top.sort()
            else:
                top = np.sort(ranks)
            out: list[tuple[int, int]] = []
            seen = set(skip)
            for rank in top.tolist():
                entry = self._words[lo + (rank & 0xFFFFFFFF)]
                slot = entry >> _SLOT_SHIFT
                if slot not in seen:
                    seen.add(slot)
                    out.append((slot, entry >> _RANK_SHIFT & _MAX_OFFSET))
                    if len(out) == limit:
                        return out
            if want >= len(ranks):
                return out
            want *= 4

    def _fuzzy(self, query: str, q: str, kinds: frozenset[str] | None, limit: int) -> SearchResult:
        arrays = [self._postings[g] for g in _grams(q) if g in self._postings]
        arrays = [a for a in arrays if len(a)]
        if not arrays:
            return SearchResult(query, (), False)
        hits = np.concatenate([np.frombuffer(a, dtype=np.int32) for a in arrays])
        counts = np.bincount(hits)
        # the entities sharing the most trigrams: a threshold pass, then a partial sort of
        # the few that pass (argpartition over all 100k slots costs ~2 ms; this ~0.1 ms)
        most = int(counts.max())
        top = np.flatnonzero(counts >= max(1, most // 2))
        if len(top) > _CANDIDATES:
            top = top[np.argpartition(counts[top], -_CANDIDATES)[-_CANDIDATES:]]
        choices: dict[int, str] = {}
        for s in top.tolist():
            if self._keys[s] is None or not self._kind_ok(s, kinds):
                continue
            choices[s] = self._norms[s]
            title = self._title_norms[s]
            if title:
                choices[-s - 1] = title  # titles under negative ids
        scored = process.extract(q, choices, scorer=fuzz.WRatio, limit=max(limit * 4, 32), score_cutoff=50)
        best: dict[int, tuple[float, int, int]] = {}
        q_sorted = _sorted_words(q)
        n_words = q.count(" ") + 1
        for text, score, cid in scored:
            slot = cid if cid >= 0 else -cid - 1
            d = min(
                DamerauLevenshtein.distance(q, text),
                DamerauLevenshtein.distance(q_sorted, _sorted_words(text)),
            )
            pd = _partial_distance(q, text, n_words)
            prev = best.get(slot)
            if prev is None:
                best[slot] = (float(score), d, pd)
            else:
                best[slot] = (max(prev[0], float(score)), min(prev[1], d), min(prev[2], pd))
        allowance = allowed_typos(len(q))
        q_words = [w for w in q.split(" ") if len(w) >= 4 and w not in _GENERIC_WORDS]
        best = {s: v for s, v in best.items() if self._close(s, q, q_words, v[1], v[2], allowance)}
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[1][1], self._norms[kv[0]]))
        cands = [self._candidate(s, sc, d, False) for s, (sc, d, _pd) in ranked]
        partial = {self._keys[s]: pd for s, (_sc, _d, pd) in ranked}
        confident = False
        chosen: Candidate | None = None
        if cands:
            min_d = min(c.distance for c in cands)
            leaders = [c for c in cands if c.distance == min_d]
            rivals = [c for c in cands if c is not leaders[0] and partial[c.key] < min_d]
            if len(leaders) == 1 and min_d <= allowance and not rivals:
                chosen = leaders[0]
            elif len(q) >= 3:
                # a part of a name, typos allowed: only when exactly one name has it
                min_pd = min(partial[c.key] for c in cands)
                part_leaders = [c for c in cands if partial[c.key] == min_pd]
                if (
                    min_pd <= allowance
                    and len(part_leaders) == 1
                    and not (min_pd == 0 and self._more_contain(q, part_leaders[0], kinds))
                ):
                    chosen = part_leaders[0]
        if chosen is not None:
            confident = True
            cands.remove(chosen)
            cands.insert(0, chosen)
        return SearchResult(query, tuple(cands[:limit]), confident)

    def _close(self, slot: int, q: str, q_words: list[str], distance: int, partial: int, allowance: int) -> bool:
        """Whether the entity in ``slot`` is like enough to ``q`` to be offered (see the module's point 4)."""
        if distance <= allowance or partial <= allowance:
            return True
        for text in (self._norms[slot], self._title_norms[slot]):
            if not text:
                continue
            if len(q) >= 3 and _contains_words(q, text):
                return True
            if len(text) >= 3 and f" {text} " in f" {q} ":
                return True
            words = text.split(" ")
            for qw in q_words:
                typos = allowed_typos(len(qw))
                if any(w.startswith(qw) or (len(w) >= 4 and DamerauLevenshtein.distance(qw, w, score_cutoff=typos) <= typos)
                       for w in words if w not in _GENERIC_WORDS):
                    return True
        return False

    def _more_contain(self, q: str, found: Candidate, kinds: frozenset[str] | None) -> bool:
        """Whether names outside the candidate list also contain the query (then it is not unique)."""
        arrays = [self._postings[g] for g in _grams(q) if g in self._postings]
        if not arrays:
            return False
        smallest = min(arrays, key=len)
        for s in smallest.tolist()[:5000]:
            key = self._keys[s]
            if key is None or key == found.key or not self._kind_ok(s, kinds):
                continue
            if _contains_words(q, self._norms[s]) or (self._title_norms[s] and _contains_words(q, self._title_norms[s] or "")):
                return True
        return False

    def keys(self) -> Sequence[str]:
        return list(self._slots)


def _word_entries(slot: int, text: str, title: int) -> list[int]:
    """The word-prefix entries of one normalized text: one per word start."""
    base = slot << _SLOT_SHIFT | title | min(len(text), _MAX_OFFSET) << _RANK_SHIFT
    entries = [base]
    space = text.find(" ")  # normalized: single spaces, none at either end
    while 0 <= space < _MAX_OFFSET:
        entries.append(base | _LATER_BIT | space + 1)
        space = text.find(" ", space + 1)
    return entries


def _partial_distance(q: str, text: str, n_words: int) -> int:
    """Smallest edit distance between ``q`` and any run of ``n_words`` consecutive words of ``text``."""
    words = text.split(" ")
    if len(words) <= n_words:
        return DamerauLevenshtein.distance(q, text)
    return min(
        DamerauLevenshtein.distance(q, " ".join(words[i : i + n_words])) for i in range(len(words) - n_words + 1)
    )


def _contains_words(q: str, text: str) -> bool:
    """``q`` appears in ``text`` starting at a word boundary (``pay`` in ``payment service``)."""
    if q == text:
        return True
    idx = text.find(q)
    while idx != -1:
        if idx == 0 or text[idx - 1] == " ":
            return True
        idx = text.find(q, idx + 1)
    return False
