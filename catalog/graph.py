"""The relation graph in memory: every entity's relations in microseconds, no query.

Storage keeps each relation once, as its source emitted it. The graph keeps both
directions as packed integers (``type_id << 32 | node_id``): outgoing in one
``array('q')`` per node, incoming in a set per node (so one edge comes out in O(1)),
which keeps 400,000 relations to a few tens of MB. It is built
once from storage and then follows each sync's change feed.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence

from .model import INVERSE, RELATION_PAIRS, Relation

__all__ = ["RelationGraph"]

_TYPES: tuple[str, ...] = tuple(t for pair in RELATION_PAIRS for t in pair)
_TYPE_ID = {t: i for i, t in enumerate(_TYPES)}
_INVERSE_ID = [_TYPE_ID[INVERSE[t]] for t in _TYPES]
_SHIFT = 32
_MASK = (1 << _SHIFT) - 1


_MADE_KEPT = 2048


class RelationGraph:
    """Both directions of every stored relation, by entity key."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._keys: list[str] = []
        self._out: list[array[int] | None] = []  # relations a node emitted
        # relations others emitted towards it (as their type): a set, because a big group has
        # tens of thousands and one member's edge must come out without a scan
        self._in: list[set[int] | None] = []
        # relations() answers already made (an owner group is asked for on every `owner` question);
        # any change to the graph forgets them all
        self._made: dict[str, tuple[Relation, ...]] = {}

    def _id(self, key: str) -> int:
        node = self._ids.get(key)
        if node is None:
            node = len(self._keys)
            self._ids[key] = node
            self._keys.append(key)
            self._out.append(None)
            self._in.append(None)
        return node

    def __len__(self) -> int:
        return sum(len(a) for a in self._out if a is not None)

    def add(self, source: str, rel_type: str, target: str) -> None:
        """One relation as its source emitted it."""
        s, t, ty = self._id(source), self._id(target), _TYPE_ID[rel_type]
        if self._made:
            self._made.clear()
        out = self._out[s]
        if out is None:
            out = self._out[s] = array("q")
        out.append(ty << _SHIFT | t)
        inc = self._in[t]
        if inc is None:
            inc = self._in[t] = set()
        inc.add(ty << _SHIFT | s)

    def load(self, rows: Iterable[tuple[str, str, str]]) -> None:
        for source, rel_type, target in rows:
            if rel_type in _TYPE_ID:
                self.add(source, rel_type, target)

    def drop(self, source: str) -> None:
        """Forget the relations ``source`` emitted (it was removed or re-emits them)."""
        s = self._ids.get(source)
        if s is None:
            return
        out = self._out[s]
        if not out:
            return
        if self._made:
            self._made.clear()
        for packed in out:
            t = packed & _MASK
            inc = self._in[t]
            if inc is not None:
                inc.discard((packed >> _SHIFT) << _SHIFT | s)
        self._out[s] = None

    def replace(self, source: str, relations: Sequence[tuple[str, str, str]]) -> None:
        self.drop(source)
        for src, rel_type, target in relations:
            if rel_type in _TYPE_ID:
                self.add(src, rel_type, target)

    def relations(self, key: str) -> list[Relation]:
        """All relations of ``key``: what it emitted plus the inverse of what others emitted to it,
        each once, by (type, target) (``stitched`` as a list the caller may change)."""
        return list(self.stitched(key))

    def stitched(self, key: str) -> tuple[Relation, ...]:
        """``key``'s relations as ``Entity.relations`` holds them: each once, sorted by (type, target).

        Kept (an owner group, with its dozens of relations, is asked for on every ``owner``
        question) until the graph next changes; a tuple of frozen values, so it is handed out as is.
        """
        made = self._made.get(key)
        if made is not None:
            return made
        node = self._ids.get(key)
        if node is None:
            return ()
        keys = self._keys
        # every relation here has ``key`` as its source, so (type, target) is the whole of one:
        # deduplicating and sorting these plain pairs is what sorting the set of Relations was
        pairs = {(_TYPES[p >> _SHIFT], keys[p & _MASK]) for p in (self._out[node] or ())}
        pairs.update((_TYPES[_INVERSE_ID[p >> _SHIFT]], keys[p & _MASK]) for p in (self._in[node] or ()))
        made = tuple([Relation(key, ty, target) for ty, target in sorted(pairs)])
        if len(self._made) >= _MADE_KEPT:
            self._made.pop(next(iter(self._made)))
        self._made[key] = made
        return made

    def related(self, key: str, rel_type: str) -> list[str]:
        """Target keys of ``key``'s relations of one type (either stored direction), sorted."""
        node = self._ids.get(key)
        ty = _TYPE_ID.get(rel_type)
        if node is None or ty is None:
            return []
        inv = _TYPE_ID[INVERSE[rel_type]]
        keys = self._keys
        found = {keys[p & _MASK] for p in (self._out[node] or ()) if p >> _SHIFT == ty}
        found.update(keys[p & _MASK] for p in (self._in[node] or ()) if p >> _SHIFT == inv)
        return sorted(found)
