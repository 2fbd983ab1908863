"""Questions in words, read by each command's declared ``Grammar`` (see ``api.Phrasing``).

Pure: text and compiled phrasings in, matches out; the dispatcher asks the catalog which match
names a real entity. A question becomes words first (smart quotes, punctuation, contractions,
``on-call``), so the matching runs over a few dozen words and never backtracks over characters:
a phrasing is a short sequence of words, choices and slots, matched position by position with a
memo, and a slot only ends where the word after it can begin.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .api import CommandSpec, Grammar, Phrasing

__all__ = [
    "COMMON_STOP_WORDS",
    "CompiledPhrasing",
    "GrammarError",
    "Match",
    "Matcher",
    "Word",
    "compile_grammar",
    "openings",
    "pattern_text",
    "text_of",
    "trim",
    "words",
]

#: Words that carry no meaning in any question, dropped wherever a command's stop words are.
COMMON_STOP_WORDS: tuple[str, ...] = (
    "the", "a", "an", "please", "pls", "plz", "kindly", "thanks", "thank you", "thx", "ty", "exactly",
    "actually", "quickly", "again", "btw", "right now", "now", "currently", "at the moment",
)
#: What people put before a question: dropped from its start (``hey @Callboard, ...``).
_GREETINGS: tuple[str, ...] = ("hey", "hi", "hello", "yo", "hiya", "ok", "okay", "so", "um", "uh", "callboard",
                               "please", "pls", "quick question", "question")
#: Longer openings, dropped when the question does not match with them (``can you tell me who owns x``).
_PRELUDES: tuple[str, ...] = (
    "can you", "could you", "would you", "will you", "can u", "do you know", "does anyone know", "anyone know",
    "i want to know", "i need to know", "i would like to know", "i'd like to know", "i wonder", "i wonder if",
    "tell me", "show me", "let me know", "please",
)
#: Read as other words (lower case): contractions, and on-call however it is spelled.
_EXPANSIONS: dict[str, tuple[str, ...]] = {
    "who's": ("who", "is"), "whos": ("who", "is"), "who're": ("who", "are"), "whom": ("who",),
    "what's": ("what", "is"), "whats": ("what", "is"), "what're": ("what", "are"),
    "where's": ("where", "is"), "wheres": ("where", "is"), "how's": ("how", "is"),
    "which's": ("which", "is"), "i'm": ("i", "am"), "u": ("you",),
    "oncall": ("on", "call"), "on-call": ("on", "call"), "run-book": ("runbook",), "run-books": ("runbooks",),
}
_SMART = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u2014": "--", "\u2013": "-"})
_LEADING = "\"'`([{<*_"
_TRAILING = "\"'`)]}>*_?!.,;:"
#: Most matches kept per phrasing (a slot that may end at many places: ``how do i x on y on z``).
_MAX_MATCHES = 16


class GrammarError(ValueError):
    """A phrasing that cannot be read (the registry turns it into a StartupError naming the command)."""


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a question: as matched (lower case, canonical) and as typed (for slot values)."""

    word: str
    text: str  # as typed, punctuation around it removed; "" for the second word of an expansion


def words(text: str) -> list[Word]:
    """The words of ``text``: smart quotes made plain, punctuation around words dropped,
    contractions and on-call read as their words, ``'s`` split off (``payment-service's``)."""
    out: list[Word] = []
    for raw in text.translate(_SMART).split():
        token = raw.rstrip(_TRAILING)
        if token.lower() != "'s":
            token = token.lstrip(_LEADING).rstrip(_TRAILING)
        if not token:
            continue
        lower = token.lower()
        expanded = _EXPANSIONS.get(lower)
        if expanded is not None:
            out.append(Word(expanded[0], token))
            out.extend(Word(w, "") for w in expanded[1:])
        elif lower.endswith("'s") and len(lower) > 2:
            out.append(Word(lower[:-2], token[:-2]))
            out.append(Word("'s", ""))
        else:
            out.append(Word(lower, token))
    return out


def _phrase(text: str) -> tuple[str, ...]:
    return tuple(w.word for w in words(text))


def _phrases(items: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    found = {p for p in (_phrase(i) for i in items) if p}
    return tuple(sorted(found, key=lambda p: (-len(p), p)))  # longest first: "at the moment" before "at"


#: the greetings and openings as word tuples, made once (every question is tried against them)
_GREETING_PHRASES = _phrases(_GREETINGS)
_PRELUDE_PHRASES = _phrases(_GREETINGS + _PRELUDES)


def text_of(ws: Sequence[Word]) -> str:
    """The words as typed (an expansion's words once)."""
    return " ".join(w.text for w in ws if w.text)


def _starts(ws: Sequence[Word], at: int, phrase: tuple[str, ...]) -> bool:
    """``phrase`` stands in ``ws`` at ``at``."""
    return len(phrase) <= len(ws) - at and all(ws[at + i].word == phrase[i] for i in range(len(phrase)))


class _Stops:
    """A stop list indexed by its phrases' first and last words, each phrase with its place in the
    list (``trim`` takes the earliest phrase standing at either end, as a walk over the list would)."""

    __slots__ = ("stop", "heads", "tails")

    def __init__(self, stop: tuple[tuple[str, ...], ...]) -> None:
        self.stop = stop
        heads: dict[str, list[tuple[int, tuple[str, ...]]]] = {}
        tails: dict[str, list[tuple[int, tuple[str, ...]]]] = {}
        for i, phrase in enumerate(stop):
            if phrase:
                heads.setdefault(phrase[0], []).append((i, phrase))
                tails.setdefault(phrase[-1], []).append((i, phrase))
        self.heads = {word: tuple(found) for word, found in heads.items()}
        self.tails = {word: tuple(found) for word, found in tails.items()}


#: the index of each stop list in use, by identity (a registry has a handful: one per command and
#: the dispatcher's common one); the entry holds the list, so its id stays its own
_STOPS: dict[int, _Stops] = {}


def _stops(stop: tuple[tuple[str, ...], ...]) -> _Stops:
    found = _STOPS.get(id(stop))
    if found is None or found.stop is not stop:
        if len(_STOPS) >= 256:  # lists made per call (not the registry's): do not keep them all
            _STOPS.clear()
        found = _STOPS[id(stop)] = _Stops(stop)
    return found


def _trim_span(wt: tuple[str, ...], start: int, end: int, stops: _Stops) -> tuple[int, int]:
    """``wt[start:end]`` without stop words at either end, as (start, end): each step drops the
    earliest phrase of the list standing at the start or at the end (the start first, for one phrase)."""
    heads, tails = stops.heads, stops.tails
    while start < end:
        first, step = -1, 0
        for i, phrase in heads.get(wt[start], ()):
            if len(phrase) <= end - start and wt[start:start + len(phrase)] == phrase:
                first, step = i, len(phrase)
                break
        for i, phrase in tails.get(wt[end - 1], ()):
            if 0 <= first <= i:
                break
            if len(phrase) <= end - start and wt[end - len(phrase):end] == phrase:
                first, step = i, -len(phrase)
                break
        if first < 0:
            break
        if step > 0:
            start += step
        else:
            end += step
    return start, end


def trim(ws: Sequence[Word], stop: tuple[tuple[str, ...], ...]) -> list[Word]:
    """``ws`` without stop words (or runs of them) at either end."""
    start, end = _trim_span(tuple(w.word for w in ws), 0, len(ws), _stops(stop))
    return list(ws[start:end])


def openings(ws: list[Word]) -> list[list[Word]]:
    """The question without its greeting (``hey``, ``@Callboard``), then without each longer opening
    in turn (``can you`` → ``tell me`` → ...): the dispatcher tries each until a phrasing matches."""
    greetings, preludes = _GREETINGS_BY_HEAD, _PRELUDES_BY_HEAD

    def strip_one(ws: list[Word], lead: dict[str, tuple[tuple[str, ...], ...]]) -> list[Word] | None:
        if not ws:
            return None
        if len(ws) > 1 and ws[0].word.startswith("@"):
            return ws[1:]
        return next((ws[len(p):] for p in lead.get(ws[0].word, ()) if _starts(ws, 0, p) and len(ws) > len(p)), None)

    while (shorter := strip_one(ws, greetings)) is not None:
        ws = shorter
    out = [ws]
    while (shorter := strip_one(out[-1], preludes)) is not None:
        out.append(shorter)
    return out


# --- phrasings ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Choice:
    options: tuple[tuple[str, ...], ...]
    optional: bool
    heads: frozenset[str] = frozenset()  # the options' first words (most positions fail on them)

    def __post_init__(self) -> None:
        object.__setattr__(self, "heads", frozenset(o[0] for o in self.options))


@dataclass(frozen=True, slots=True)
class _Slot:
    name: str
    optional: bool
    joined: str | None = None  # the slot right after it, when the two are side by side
    joined_optional: bool = False


_Element = _Choice | _Slot
_TOKEN = re.compile(r"\s*(?:\((?P<choice>[^()\[\]{}]*)\)|\[(?P<optional>[^()\[\]{}]*)\]|\{(?P<slot>[a-z_]+\??)\}"
                    r"|(?P<word>[^\s()\[\]{}]+))")


@dataclass(frozen=True, slots=True)
class CompiledPhrasing:
    command: str
    pattern: str
    elements: tuple[_Element, ...]
    args: tuple[str, ...]
    entity: str | None
    kinds: tuple[str, ...]
    stop: tuple[tuple[str, ...], ...]
    order: int  # declaration order across the registry: the earlier wins a tie


@dataclass(frozen=True, slots=True)
class Match:
    """A phrasing that matches a question, with the words of each slot (stop words trimmed)."""

    phrasing: CompiledPhrasing
    literals: int  # how many of the question's words the phrasing's own words matched
    slots: tuple[tuple[str, tuple[Word, ...]], ...]
    #: (entity slot, the slot right after it, whether that one may be empty): the entity slot holds
    #: both slots' words, and the catalog says where the entity's name ends
    joined: tuple[str, str, bool] | None

    def slot(self, name: str) -> tuple[Word, ...]:
        return next((ws for n, ws in self.slots if n == name), ())


def _parse_pattern(command: str, pattern: str) -> tuple[_Element, ...]:
    elements: list[_Element] = []
    pos = 0
    text = pattern.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise GrammarError(f'command "{command}": phrasing "{pattern}": cannot read it at "{text[pos:]}"')
        pos = m.end()
        if m.group("slot"):
            name = m.group("slot")
            elements.append(_Slot(name.rstrip("?"), name.endswith("?")))
        elif m.group("word"):
            phrase = _phrase(m.group("word"))
            if not phrase:
                raise GrammarError(f'command "{command}": phrasing "{pattern}": "{m.group("word")}" is no word')
            elements.append(_Choice((phrase,), False))
        else:
            body = m.group("choice") if m.group("choice") is not None else m.group("optional")
            options = tuple(dict.fromkeys(_phrase(o) for o in body.split("|")))
            if not options or any(not o for o in options):
                raise GrammarError(f'command "{command}": phrasing "{pattern}": an empty choice in "{m.group(0).strip()}"')
            elements.append(_Choice(options, m.group("optional") is not None))
    return tuple(elements)


def compile_grammar(spec: CommandSpec, order: int) -> list[CompiledPhrasing]:
    """The phrasings of ``spec``, checked: ``GrammarError`` says which one is wrong and why."""
    grammar: Grammar | None = spec.grammar
    if grammar is None:
        return []
    stop = _phrases((*COMMON_STOP_WORDS, *grammar.stop_words))
    out: list[CompiledPhrasing] = []
    for i, declared in enumerate(grammar.phrasings):
        phrasing = declared if isinstance(declared, Phrasing) else Phrasing(pattern=declared)
        elements = list(_parse_pattern(spec.name, phrasing.pattern))
        where = f'command "{spec.name}": phrasing "{phrasing.pattern}"'
        if not any(isinstance(e, _Choice) and not e.optional for e in elements):
            raise GrammarError(f"{where}: it needs at least one word of its own")
        names = [e.name for e in elements if isinstance(e, _Slot)]
        if len(names) != len(set(names)):
            raise GrammarError(f"{where}: a slot appears twice")
        args = phrasing.args if phrasing.args is not None else grammar.args
        used = {a.strip("{}?") for a in args if a.startswith("{")}
        if phrasing.args is not None and used - set(names):
            raise GrammarError(f"{where}: its args name {{{sorted(used - set(names))[0]}}}, which it has no slot for")
        if set(names) - used:
            raise GrammarError(f"{where}: its slot {{{sorted(set(names) - used)[0]}}} is in no argument "
                               f"(args: {', '.join(args) or 'none'})")
        for j in range(len(elements) - 1):
            a, b = elements[j], elements[j + 1]
            if isinstance(a, _Slot) and isinstance(b, _Slot):
                if a.name != grammar.entity or a.optional:
                    raise GrammarError(f"{where}: two slots side by side must begin with the entity slot "
                                       f'("{grammar.entity}"), which the catalog can tell the end of')
                if j + 2 < len(elements) and isinstance(elements[j + 2], _Slot):
                    raise GrammarError(f"{where}: three slots side by side")
                elements[j] = _Slot(a.name, a.optional, joined=b.name, joined_optional=b.optional)
        out.append(CompiledPhrasing(
            command=spec.name, pattern=phrasing.pattern, elements=tuple(elements), args=args,
            entity=grammar.entity, kinds=tuple(k.lower() for k in (phrasing.kinds if phrasing.kinds is not None
                                                                   else grammar.kinds)),
            stop=stop, order=order * 1000 + i))
    return out


def pattern_text(pattern: str) -> str:
    """A phrasing as people read it: the first of each choice, optional words left out, slots as
    ``<entity>`` (``who (is|are) on call for {entity}`` → ``who is on call for <entity>``)."""
    parts: list[str] = []
    for m in _TOKEN.finditer(pattern):
        if m.group("slot"):
            name = m.group("slot").rstrip("?")
            parts.append(f"[{name}]" if m.group("slot").endswith("?") else f"<{name}>")
        elif m.group("word"):
            parts.append(m.group("word"))
        elif m.group("choice") is not None:
            parts.append(m.group("choice").split("|")[0].strip())
    return " ".join(p for p in parts if p).replace(" 's", "'s")


@dataclass(frozen=True, slots=True, eq=False)
class _Prepared:
    """What the matcher works out once per phrasing, so that a question pays only for its words."""

    phrasing: CompiledPhrasing
    needs: frozenset[int]  # the head groups (see ``Matcher``) a question must have a word of each of
    stops: _Stops  # the phrasing's stop list, indexed
    slots: dict[str, _Slot]  # its slots by name


class Matcher:
    """Every phrasing of a registry, matched against questions."""

    def __init__(self, phrasings: Iterable[CompiledPhrasing]) -> None:
        self.phrasings = tuple(phrasings)
        seen: dict[tuple[object, ...], str] = {}
        for p in self.phrasings:
            key = (p.elements,)
            if key in seen and seen[key] != p.command:
                raise GrammarError(f'command "{p.command}": phrasing "{p.pattern}" is also a phrasing of '
                                   f'"{seen[key]}"; a question must name one command')
            seen[key] = p.command
        # every choice a phrasing cannot do without (one of its options' first words must be in the
        # question) is a head group, numbered once for the registry; a question's words say which
        # groups it has, and a phrasing is a candidate when it has all of its own (a subset test).
        # A phrasing's first element is such a choice unless it is a slot or optional, so this also
        # asks that a phrasing's first word be in the question (it may follow stop words).
        groups: dict[frozenset[str], int] = {}
        stops: dict[tuple[tuple[str, ...], ...], _Stops] = {}  # by value: equal lists share their hops
        prepared: list[_Prepared] = []
        for p in self.phrasings:
            needs = frozenset(groups.setdefault(e.heads, len(groups)) for e in p.elements
                              if isinstance(e, _Choice) and not e.optional)
            index = stops.get(p.stop)
            if index is None:
                index = stops[p.stop] = _Stops(p.stop)
            slots: dict[str, _Slot] = {}
            for e in p.elements:
                if isinstance(e, _Slot):
                    slots.setdefault(e.name, e)
            prepared.append(_Prepared(p, needs, index, slots))
        by_word: dict[str, list[int]] = {}
        for heads, group in groups.items():
            for word in heads:
                by_word.setdefault(word, []).append(group)
        self._groups_of: dict[str, tuple[int, ...]] = {word: tuple(g) for word, g in by_word.items()}
        self._prepared: tuple[_Prepared, ...] = tuple(sorted(prepared, key=lambda r: r.phrasing.order))

    def match(self, ws: Sequence[Word], commands: Iterable[str] | None = None) -> list[Match]:
        """Every way a phrasing (of ``commands``, or of all) reads ``ws``, most words matched first."""
        wanted = set(commands) if commands is not None else None
        found: list[Match] = []
        if not ws:
            return found
        wt = tuple(w.word for w in ws)
        hops: dict[int, list[tuple[int, ...]]] = {}  # by stop list (its id: the lists live as long as self)
        for prepared in self._candidates(wt):
            if wanted is not None and prepared.phrasing.command not in wanted:
                continue
            stops = prepared.stops
            where = hops.get(id(stops))
            if where is None:  # where each stop word (or run of them) at each position ends
                heads = stops.heads
                where = hops[id(stops)] = [
                    tuple(at + len(ph) for _, ph in heads.get(wt[at], ()) if wt[at:at + len(ph)] == ph)
                    for at in range(len(wt))]
            found.extend(_match(prepared, ws, wt, where))
        found.sort(key=lambda m: (-m.literals, m.phrasing.order))
        return found

    def _candidates(self, wt: tuple[str, ...]) -> list[_Prepared]:
        """The phrasings that have a word of ``wt`` for each choice they cannot do without (their
        first word among them, unless they begin with a slot or an optional word; it may follow
        stop words: ``the owner of x``)."""
        groups_of = self._groups_of
        have: set[int] = set()
        for word in set(wt):
            groups = groups_of.get(word)
            if groups is not None:
                have.update(groups)
        return [r for r in self._prepared if r.needs <= have]


def _by_head(stop: tuple[tuple[str, ...], ...]) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Phrases by their first word, in their order (a question tries only the phrases its words begin)."""
    out: dict[str, list[tuple[str, ...]]] = {}
    for phrase in stop:
        out.setdefault(phrase[0], []).append(phrase)
    return {head: tuple(phrases) for head, phrases in out.items()}


#: the greetings and openings by their first word (in their order, longest first)
_GREETINGS_BY_HEAD = _by_head(_GREETING_PHRASES)
_PRELUDES_BY_HEAD = _by_head(_PRELUDE_PHRASES)

_Reading = tuple[int, tuple[tuple[str, int, int], ...]]  # (words matched, (slot, start, end) ...)


def _match(prepared: _Prepared, ws: Sequence[Word], wt: tuple[str, ...], hops: list[tuple[int, ...]]) -> list[Match]:
    """Every reading of ``ws`` (``wt``: its words) by the phrasing (at most ``_MAX_MATCHES``),
    memoised by (element, position); ``hops[at]``: where a stop word (or run) starting at ``at`` ends."""
    p = prepared.phrasing
    elements, n = p.elements, len(ws)
    count, stride = len(elements), n + 1
    memo: dict[int, list[_Reading]] = {}  # by element * stride + position
    reach: dict[int, tuple[int, ...]] = {}

    def skips(at: int) -> tuple[int, ...]:
        """Positions reachable from ``at`` by skipping stop words (``at`` itself first), memoised."""
        if at not in reach:
            found = [at]
            for hop in hops[at] if at < n else ():
                found.extend(q for q in skips(hop) if q not in found)
            reach[at] = tuple(found)
        return reach[at]

    def go(i: int, at: int) -> list[_Reading]:
        key = i * stride + at
        if key in memo:
            return memo[key]
        memo[key] = []  # no cycles (every step moves on), but keep the memo honest while computing
        results: list[_Reading] = []
        if i == count:
            if n in skips(at):
                results.append((0, ()))
            memo[key] = results
            return results
        element = elements[i]
        if isinstance(element, _Choice):
            heads = element.heads
            for pos in (at,) if at >= n or not hops[at] else skips(at):  # most words are no stop word
                if pos < n and wt[pos] in heads:
                    for option in element.options:
                        if wt[pos:pos + len(option)] == option:
                            results.extend((lit + len(option), slots) for lit, slots in go(i + 1, pos + len(option)))
                if element.optional:
                    results.extend(go(i + 1, pos))
                if len(results) >= _MAX_MATCHES:
                    break
        else:
            rest = i + 2 if element.joined else i + 1
            must: frozenset[str] | None = None  # a word the next element must begin with, if any
            if rest == count:
                ends: Iterable[int] = (n,)
            else:  # the slot ends where the next element can begin
                ends = range(at + (0 if element.optional else 1), n + 1)
                after = elements[rest]
                if isinstance(after, _Choice) and not after.optional:
                    must = after.heads
            for end in ends:
                if end == at and not element.optional:
                    continue
                # the next element cannot begin at the end (nor after stop words there): go would find nothing
                if must is not None and (end == n or (not hops[end] and wt[end] not in must)):
                    continue
                for lit, slots in go(rest, end):
                    results.append((lit, ((element.name, at, end), *slots)))
                    if len(results) >= _MAX_MATCHES:
                        break
                if len(results) >= _MAX_MATCHES:
                    break
        memo[key] = results[:_MAX_MATCHES]
        return memo[key]

    matches: list[Match] = []
    seen: set[tuple[tuple[str, str], ...]] = set()
    by_name, stops = prepared.slots, prepared.stops
    for literals, spans in sorted(go(0, 0), key=lambda r: -r[0]):  # the reading matching the most words first
        slots: list[tuple[str, tuple[Word, ...]]] = []
        joined: tuple[str, str, bool] | None = None
        ok = True
        for name, start, end in spans:
            element = by_name[name]
            start, end = _trim_span(wt, start, end, stops)
            value = tuple(ws[start:end])
            if not value and not element.optional:
                ok = False
                break
            slots.append((name, value))
            if element.joined:
                joined = (name, element.joined, element.joined_optional)
        if not ok:
            continue
        key = tuple((name, text_of(value).lower()) for name, value in slots)
        if key in seen:
            continue
        seen.add(key)
        matches.append(Match(phrasing=p, literals=literals, slots=tuple(slots), joined=joined))
    return matches
