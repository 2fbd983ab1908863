"""Who is on call for an entity: its own annotation, then (when a person owns it) that user's,
then its system's, then its owner groups' (or its owner's teams', or its system's owners'), then
their parent groups' — the first source that names someone answers, and the answer says which
step it came from, named as it is related to the entity ("its owner user jdoe", "its system
payments", "platform, parent of its owner payments"). Answers are cached briefly (their age is
shown); every source has a time limit; when all fail, the answer says so and names the owner's
contacts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from callboard.catalog.model import Entity
from callboard.catalog.service import Catalog

from .model import OnCallError, OnCallSource, SourceAnswer

__all__ = ["OnCall", "Resolution"]


@dataclass(frozen=True, slots=True)
class Resolution:
    entity: str
    answer: SourceAnswer | None = None
    via: str | None = None  # "its own annotation", "its owner payments-team", ...
    via_key: str | None = None
    age_s: float | None = None  # how old a cached answer is
    failures: tuple[str, ...] = ()
    fallback: tuple[str, ...] = ()  # owner groups to contact when nothing answered
    checked: tuple[str, ...] = field(default_factory=tuple)  # the steps tried


SourceLoader = Callable[[], Awaitable[tuple[list[OnCallSource], list[str]]]]


class OnCall:
    """``sources`` directly, or a ``loader`` run on first use (it returns the sources and the
    problems of those that could not be set up, e.g. an invalid schedule file)."""

    def __init__(self, sources: Sequence[OnCallSource] = (), *, loader: SourceLoader | None = None,
                 cache_seconds: float = 60.0, timeout: float = 8.0) -> None:
        self.sources = list(sources)
        self.problems: list[str] = []
        self._loader = loader
        self._loaded = loader is None
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self._cache: dict[tuple[Any, ...], tuple[SourceAnswer, float]] = {}

    async def ensure_sources(self) -> list[OnCallSource]:
        if not self._loaded and self._loader is not None:
            self.sources, self.problems = await self._loader()
            self._loaded = True
        return self.sources

    async def reload(self) -> None:
        """Read the sources again (after a sync: the schedule file may have changed)."""
        if self._loader is not None:
            await self.close()
            self._loaded = False
            self._cache.clear()

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self.sources), return_exceptions=True)

    async def _ask(self, source: OnCallSource, annotations: dict[str, Any], group: str | None,
                   upcoming: bool) -> tuple[SourceAnswer, float | None]:
        key = (source.name, tuple(sorted((k, str(v)) for k, v in annotations.items())), group, upcoming)
        hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[1] < self.cache_seconds:
            return hit[0], time.monotonic() - hit[1]
        call = source.upcoming(annotations, group) if upcoming else source.now(annotations, group)
        try:
            answer = await asyncio.wait_for(call, self.timeout)
        except (asyncio.TimeoutError, TimeoutError):
            raise OnCallError(f"{source.name} did not answer within {self.timeout:g} s.") from None
        self._cache[key] = (answer, time.monotonic())
        return answer, None

    async def _steps(self, catalog: Catalog, entity: Entity) -> list[tuple[Entity, str]]:
        """The chain, in order: (entity whose annotations count, how the reply names the step).

        The entity's own annotations; for an entity, its owners that are users (a person's own
        annotations), then its systems; then groups: its owner groups, the teams of its owner
        users, the owners of its systems (a user among them counts as a user does); then each
        group's parents, nearest first. A Group starts with itself and goes to its parents; a
        User with itself and goes to its teams. Each label names the step as it is related to
        the entity asked about, so "via ..." says exactly which one answered."""
        name = entity.ref.name
        if entity.kind == "Group":
            steps: list[tuple[Entity, str]] = [(entity, f"the group {name}")]
            parents = await catalog.get_many(entity.related("childOf"), relations=True)
            return steps + await self._parents(catalog, [(p, f"its parent group {p.ref.name}") for p in parents.values()],
                                               seen={entity.ref.key})
        steps = [(entity, "its own on-call annotation")]
        if entity.kind == "User":
            teams = await catalog.get_many(entity.related("memberOf"), relations=True)
            return steps + await self._parents(catalog, [(t, f"their team {t.ref.name}") for t in teams.values()],
                                               seen={entity.ref.key})
        systems = [k for k in entity.related("partOf") if k.startswith("system:")]
        found = await catalog.get_many([*entity.related("ownedBy"), *systems], relations=True)
        # (owner, how it is named): the entity's own owners first, then its systems' owners
        own = [(found[k], "") for k in entity.related("ownedBy") if k in found]
        of_systems = [(o, f"owner of its system {found[k].ref.name}") for k in systems if k in found
                      for o in found[k].related("ownedBy")]
        more = await catalog.get_many([o for o, _ in of_systems if o not in found], relations=True)
        found.update(more)
        system_owners = [(found[o], role) for o, role in of_systems if o in found]
        users = [(u, f"its owner user {u.ref.name}") for u, _ in own if u.kind == "User"]
        system_users = [(u, f"{u.ref.name}, {role}") for u, role in system_owners if u.kind == "User"]
        steps.extend(users)
        steps.extend((found[k], f"its system {found[k].ref.name}") for k in systems if k in found)
        steps.extend(system_users)
        once: dict[str, tuple[Entity, str]] = {}
        for step, label in steps:  # a person who owns both the entity and its system: asked once
            once.setdefault(step.ref.key, (step, label))
        steps = list(once.values())
        teams = await catalog.get_many([t for u, _ in [*users, *system_users] for t in u.related("memberOf")],
                                       relations=True)

        def teams_of(people: list[tuple[Entity, str]]) -> list[tuple[Entity, str]]:
            return [(teams[t], f"{teams[t].ref.name}, team of {label}") for u, label in people
                    for t in u.related("memberOf") if t in teams]

        groups = [(g, f"its owner {g.ref.name}") for g, _ in own if g.kind != "User"]
        groups += teams_of(users)
        groups += [(g, f"{g.ref.name}, {role}") for g, role in system_owners if g.kind != "User"]
        groups += teams_of(system_users)
        return steps + await self._parents(catalog, groups, seen={entity.ref.key})

    async def _parents(self, catalog: Catalog, frontier: list[tuple[Entity, str]], *,
                       seen: set[str]) -> list[tuple[Entity, str]]:
        """``frontier``'s groups, then their parents level by level (each labelled "parent of"
        the step it comes from), each group once."""
        steps: list[tuple[Entity, str]] = []
        depth = 0
        while frontier and depth < 6:
            nxt: list[tuple[Entity, str]] = []
            for group, label in frontier:
                if group.ref.key in seen:
                    continue
                seen.add(group.ref.key)
                steps.append((group, label))
                parents = await catalog.get_many(group.related("childOf"), relations=True)
                nxt.extend((p, f"{p.ref.name}, parent of {label}") for p in parents.values())
            frontier, depth = nxt, depth + 1
        return steps

    async def resolve(self, catalog: Catalog, entity: Entity, *, upcoming: bool = False) -> Resolution:
        await self.ensure_sources()
        failures: list[str] = list(self.problems)
        checked: list[str] = []
        for step, label in await self._steps(catalog, entity):
            annotations = step.metadata.get("annotations") or {}
            annotations = {k: v for k, v in annotations.items() if isinstance(k, str)} if isinstance(annotations, dict) else {}
            group = step.ref.key if step.kind == "Group" else None
            checked.append(label)
            for source in self.sources:
                if not source.handles(annotations, group):
                    continue
                try:
                    answer, age = await self._ask(source, annotations, group, upcoming)
                except OnCallError as exc:
                    failures.append(str(exc))
                    continue
                if answer.shifts:
                    return Resolution(entity.ref.key, answer, label, step.ref.key, age, tuple(failures),
                                      checked=tuple(checked))
                failures.append(f"{source.name}: nobody is on call for {answer.target}.")
        owners = entity.related("ownedBy") if entity.kind != "Group" else [entity.ref.key]
        return Resolution(entity.ref.key, failures=tuple(failures), fallback=tuple(owners), checked=tuple(checked))
