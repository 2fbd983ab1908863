"""Questions in words, read by each command's declared ``Grammar`` (see ``api.Phrasing``).

Pure: text and compiled phrasings in, matches out; the dispatcher asks the catalog which match
names a real entity. A question becomes words first (smart quotes, punctuation, contractions,
``on-call``), so the matching runs over a few dozen words and never backtracks over characters:
a phrasing is a short sequence of words, choices and slots, matched position by position with a
memo, and a slot only ends where the word after it can begin.
"""

from __future__ import annotations

import functools

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


def _starts(ws: Sequence[Word], at: int, phrase: tuple[str, ...], end: int | None = None) -> bool:
    """``phrase`` stands in ``ws`` at ``at`` (and ends by ``end``)."""
    stop = len(ws) if end is None else end
    return len(phrase) <= stop - at and all(ws[at + i].word == phrase[i] for i in range(len(phrase)))


def trim(ws: Sequence[Word], stop: tuple[tuple[str, ...], ...]) -> list[Word]:
    """``ws`` without stop words (or runs of them) at either end."""
    start, end = 0, len(ws)
    changed = True
    while changed and start < end:
        changed = False
        for phrase in stop:
            if _starts(ws, start, phrase, end):
                start += len(phrase)
                changed = True
                break
            if len(phrase) <= end - start and _starts(ws, end - len(phrase), phrase):
                end -= len(phrase)
                changed = True
                break
    return list(ws[start:end])


def openings(ws: list[Word]) -> list[list[Word]]:
    """The question without its greeting (``hey``, ``@Callboard``), then without each longer opening
    in turn (``can you`` → ``tell me`` → ...): the dispatcher tries each until a phrasing matches."""
    # by their first word (in their order, longest first): a question tries only those its first word begins
    greetings, preludes = _by_head(_GREETING_PHRASES), _by_head(_PRELUDE_PHRASES)

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
        # every word a phrasing cannot do without (a choice that is not optional: one of its
        # options' first words must be in the question), so most phrasings are ruled out by a set test
        self._needs: dict[int, tuple[frozenset[str], ...]] = {
            id(p): tuple(e.heads for e in p.elements if isinstance(e, _Choice) and not e.optional)
            for p in self.phrasings}
        self._by_first: dict[str | None, list[CompiledPhrasing]] = {}
        for p in self.phrasings:
            first = p.elements[0]
            keys: list[str | None] = [None] if isinstance(first, _Slot) or first.optional else \
                [o[0] for o in first.options]
            for k in keys:
                self._by_first.setdefault(k, []).append(p)

    def match(self, ws: Sequence[Word], commands: Iterable[str] | None = None) -> list[Match]:
        """Every way a phrasing (of ``commands``, or of all) reads ``ws``, most words matched first."""
        wanted = set(commands) if commands is not None else None
        found: list[Match] = []
        if not ws:
            return found
        hops: dict[tuple[tuple[str, ...], ...], list[tuple[int, ...]]] = {}
        for p in self._candidates(ws):
            if wanted is not None and p.command not in wanted:
                continue
            if p.stop not in hops:  # where each stop word (or run of them) at each position ends
                by_head = _by_head(p.stop)
                hops[p.stop] = [tuple(at + len(ph) for ph in by_head.get(ws[at].word, ()) if _starts(ws, at, ph))
                                for at in range(len(ws))]
            found.extend(_match(p, ws, hops[p.stop]))
        found.sort(key=lambda m: (-m.literals, m.phrasing.order))
        return found

    def _candidates(self, ws: Sequence[Word]) -> list[CompiledPhrasing]:
        """The phrasings whose first word is in ``ws`` (it may follow stop words: ``the owner of x``),
        and those that begin with a slot or an optional word."""
        firsts = {w.word for w in ws}
        out = list(self._by_first.get(None, ()))
        for word in firsts:
            out.extend(self._by_first.get(word, ()))
        needs = self._needs
        return sorted({p for p in out if all(heads & firsts for heads in needs[id(p)])}, key=lambda p: p.order)


@functools.lru_cache(maxsize=256)
def _by_head(stop: tuple[tuple[str, ...], ...]) -> dict[str, tuple[tuple[str, ...], ...]]:
    """A command's stop phrases by their first word, in their order (a registry has a handful of
    stop lists: each is indexed once, and a question tries only the phrases its words begin)."""
    out: dict[str, list[tuple[str, ...]]] = {}
    for phrase in stop:
        out.setdefault(phrase[0], []).append(phrase)
    return {head: tuple(phrases) for head, phrases in out.items()}


def _match(p: CompiledPhrasing, ws: Sequence[Word], hops: list[tuple[int, ...]]) -> list[Match]:
    """Every reading of ``ws`` by ``p`` (at most ``_MAX_MATCHES``), memoised by (element, position);
    ``hops[at]``: where a stop word (or run) starting at ``at`` ends."""
    elements, n, stop = p.elements, len(ws), p.stop
    memo: dict[tuple[int, int], list[tuple[int, tuple[tuple[str, int, int], ...]]]] = {}
    reach: dict[int, tuple[int, ...]] = {}

    def skips(at: int) -> tuple[int, ...]:
        """Positions reachable from ``at`` by skipping stop words (``at`` itself first), memoised."""
        if at not in reach:
            found = [at]
            for hop in hops[at] if at < n else ():
                found.extend(q for q in skips(hop) if q not in found)
            reach[at] = tuple(found)
        return reach[at]

    def go(i: int, at: int) -> list[tuple[int, tuple[tuple[str, int, int], ...]]]:
        key = (i, at)
        if key in memo:
            return memo[key]
        memo[key] = []  # no cycles (every step moves on), but keep the memo honest while computing
        results: list[tuple[int, tuple[tuple[str, int, int], ...]]] = []
        if i == len(elements):
            if n in skips(at):
                results.append((0, ()))
            memo[key] = results
            return results
        element = elements[i]
        if isinstance(element, _Choice):
            for pos in skips(at):
                for option in element.options if pos < n and ws[pos].word in element.heads else ():
                    if _starts(ws, pos, option):
                        results.extend((lit + len(option), slots) for lit, slots in go(i + 1, pos + len(option)))
                if element.optional:
                    results.extend(go(i + 1, pos))
                if len(results) >= _MAX_MATCHES:
                    break
        else:
            rest = i + 2 if element.joined else i + 1
            if rest == len(elements):
                ends = [n]
            else:  # the slot ends where the next element can begin
                ends = list(range(at + (0 if element.optional else 1), n + 1))
            for end in ends:
                if end == at and not element.optional:
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
    for literals, spans in sorted(go(0, 0), key=lambda r: -r[0]):  # the reading matching the most words first
        slots: list[tuple[str, tuple[Word, ...]]] = []
        joined: tuple[str, str, bool] | None = None
        ok = True
        for name, start, end in spans:
            element = next(e for e in elements if isinstance(e, _Slot) and e.name == name)
            value = tuple(trim(ws[start:end], stop))
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
