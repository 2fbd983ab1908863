"""Questions as people type them: the labelled phrasings of ``phrasings.yaml`` through the real
Dispatcher, over the demo catalog and over a catalog generated at test time (its real names picked
from the file, never written down here), every one at 100%: the right command, about the right
entity (and topic), or honestly not found / ambiguous."""

from __future__ import annotations

import dataclasses
import random
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from callboard.bot.app import Callboard, demo_catalog_path
from callboard.bot.config import Settings
from callboard.bot.shell import Shell
from callboard.catalog.search import normalize
from callboard.commands.api import Deps, Invocation, ItemList, Reply, Status
from callboard.commands.dispatch import CommandRegistry, Dispatcher

from ..conftest import SHARED

HERE = Path(__file__).resolve().parent
LABELS: dict[str, list[dict[str, Any]]] = yaml.safe_load((HERE / "phrasings.yaml").read_text())
#: the asker in the demo catalog (so "what do I own" has someone to answer for)
ASKER = "user:default/priya.raman"
#: names per template of the generated set
PER_TEMPLATE = 3


@dataclass(frozen=True)
class Case:
    q: str
    cmd: str | None
    ref: str | None = None
    topic: str | None = None
    expect: str = "OK"
    candidates: tuple[str, ...] = ()


def full_ref(short: str) -> str:
    kind, _, rest = short.partition(":")
    return f"{kind}:{rest}" if "/" in rest else f"{kind}:default/{rest}"


def demo_cases() -> list[Case]:
    return [Case(q=c["q"], cmd=c.get("cmd"), ref=full_ref(c["ref"]) if c.get("ref") else None, topic=c.get("topic"),
                 expect=c.get("expect", "OK"), candidates=tuple(full_ref(r) for r in c.get("candidates", ())))
            for c in LABELS["demo"]]


def surface_sample() -> list[Case]:
    """What a chat surface's test asks: every third labelled demo phrasing, then every kind of
    expectation at least once."""
    cases = demo_cases()
    sample = cases[::3]
    for expect in ("NOT_FOUND", "AMBIGUOUS", "UNKNOWN"):
        if not any(c.expect == expect for c in sample):
            sample.append(next(c for c in cases if c.expect == expect))
    return sample


class Recorder:
    """The app's commands, each recording what it was asked (command and arguments) before it runs,
    behind a dispatcher that keeps every answer with the invocation that made it (``answers``)."""

    def __init__(self, app: Callboard) -> None:
        self.asked: list[Invocation] = []
        self.answers: list[tuple[Reply, Invocation | None]] = []
        specs = [dataclasses.replace(s, run=self._recording(s.run)) for s in app.dispatcher.registry.specs]
        self.dispatcher = Dispatcher(CommandRegistry(specs), app.dispatcher.deps)
        dispatch = self.dispatcher.dispatch

        async def answered(text: str, **kw: Any) -> Reply:
            self.asked.clear()
            reply = await dispatch(text, **kw)
            self.answers.append((reply, self.asked[0] if self.asked else None))
            return reply

        self.dispatcher.dispatch = answered  # type: ignore[method-assign]

    def _recording(self, run: Any) -> Any:
        async def recorded(inv: Invocation, deps: Deps) -> Reply:
            self.asked.append(inv)
            return await run(inv, deps)

        return recorded

    async def ask(self, q: str) -> tuple[Reply, Invocation | None]:
        await self.dispatcher.dispatch(q, user_ref=ASKER)
        return self.answers[-1]


def offered(reply: Reply) -> list[str]:
    """Every entity a reply offers: candidates in its data, refs in its lists."""
    refs = [c["ref"] for c in reply.data.get("candidates") or []]
    refs += [i.ref for b in reply.blocks if isinstance(b, ItemList) for i in b.items if i.ref]
    return refs


def check(case: Case, reply: Reply, inv: Invocation | None, app: Callboard) -> str | None:
    """What is wrong with the answer to ``case`` (None: nothing)."""
    got = f"got {reply.command}/{reply.status.value} args={inv.args if inv else None}: {reply.summary[:100]!r}"
    if case.expect == "UNKNOWN":
        if reply.command is not None or reply.status is not Status.USAGE or offered(reply):
            return f"expected no command and no entity offered; {got}"
        return None
    if reply.command != case.cmd or inv is None or inv.command != case.cmd:
        return f"expected {case.cmd}; {got}"
    if case.expect == "NOT_FOUND":
        if reply.status is not Status.NOT_FOUND or offered(reply):
            return f"expected not found, no entity offered; {got}"
        return None
    if case.expect == "AMBIGUOUS":
        missing = set(case.candidates) - set(offered(reply))
        if reply.status is not Status.AMBIGUOUS or missing:
            return f"expected the candidates {sorted(case.candidates)}; {got} (missing {sorted(missing)})"
        return None
    if reply.status in (Status.AMBIGUOUS, Status.USAGE):
        return f"expected an answer; {got}"
    if case.ref is not None:
        match = app.catalog.search(inv.args[0]).match if inv.args else None
        if match is None or match.key != case.ref:
            return f"expected the entity {case.ref}; {got}"
        if reply.status is Status.OK and reply.subject is not None and reply.subject != case.ref:
            return f"expected an answer about {case.ref}; {got} (subject {reply.subject})"
    if case.topic is not None and " ".join(inv.args[1:]).lower() != case.topic.lower():
        return f"expected the topic {case.topic!r}; {got}"
    return None


def check_shown(case: Case, reply: Reply, inv: Invocation | None, app: Callboard, shown: str,
                platform: str) -> str | None:
    """``check``, then what ``platform`` was sent (``shown``, as JSON): it names the entity of an
    answered question, and never calls the question an unknown command."""
    problem = check(case, reply, inv, app)
    if problem is None and case.ref is not None and case.expect == "OK":
        name = case.ref.split("/", 1)[1]
        if name not in shown:
            problem = f"the answer {platform} received does not name {name}"
    if problem is None and "don't know the command" in shown:
        problem = f"{platform} was told the question is an unknown command"
    return problem


async def run_cases(app: Callboard, cases: list[Case]) -> list[str]:
    recorder = Recorder(app)
    misses = []
    for case in cases:
        reply, inv = await recorder.ask(case.q)
        problem = check(case, reply, inv, app)
        if problem:
            misses.append(f"{case.q!r}: {problem}")
    return misses


# --- the demo catalog ----------------------------------------------------------------------------


async def test_labelled_phrasings_over_the_demo_catalog(demo_app: Callboard) -> None:
    cases = demo_cases()
    assert len(cases) >= 120
    misses = await run_cases(demo_app, cases)
    assert not misses, f"{len(misses)}/{len(cases)} wrong:\n" + "\n".join(misses)


async def test_a_sample_in_the_terminal(demo_app: Callboard) -> None:
    """The shell surface asks the same dispatcher: a sample of the demo set, rendered as text."""
    recorder = Recorder(demo_app)
    demo_app.dispatcher = recorder.dispatcher
    shell = Shell(demo_app)
    misses = []
    sample = demo_cases()[1::4]
    for case in sample:
        shown = await shell.exec(case.q)
        reply, inv = recorder.answers[-1]
        problem = check(case, reply, inv, demo_app)
        if problem is None and case.ref is not None and case.expect == "OK" and case.ref.split("/", 1)[1] not in shown:
            problem = f"the terminal's answer does not name {case.ref}"
        if problem:
            misses.append(f"{case.q!r}: {problem}")
    assert len(recorder.answers) == len(sample)
    assert not misses, f"{len(misses)}/{len(sample)} wrong in the terminal:\n" + "\n".join(misses)


# --- a generated catalog -------------------------------------------------------------------------


def _generator() -> Path:
    assert SHARED is not None  # the tests using it are marked reference: skipped, saying why, without shared/
    path = SHARED.parent / "bench" / "gen_catalog.py"
    assert path.is_file(), f"{path} is missing (shared/bench/gen_catalog.py generates the catalog)"
    return path


def _entities(catalog: Path) -> dict[str, list[str]]:
    """Names per kind (lower case) that name one entity only, by name and by title, in ``catalog``."""
    docs = [d for d in yaml.safe_load_all(catalog.read_text()) if isinstance(d, dict)]
    seen: dict[str, int] = {}
    for d in docs:
        for text in {d["metadata"]["name"], d["metadata"].get("title") or d["metadata"]["name"]}:
            seen[normalize(text)] = seen.get(normalize(text), 0) + 1
    names: dict[str, list[str]] = {}
    for d in docs:
        name = d["metadata"]["name"]
        if seen[normalize(name)] == 1 and d["kind"] != "Location":
            names.setdefault(d["kind"].lower(), []).append(name)
    return names


def generated_cases(names: dict[str, list[str]], seed: int = 12) -> list[Case]:
    """The generated set's templates, each filled with ``PER_TEMPLATE`` names picked at random (seeded)."""
    rng = random.Random(seed)
    out: list[Case] = []
    for template in LABELS["generated"]:
        q: str = template["q"]
        kind = template.get("ref")
        slot = next((k for k in names if "{" + k in q), None)
        for _ in range(PER_TEMPLATE if slot else 1):
            text, ref = q, None
            if slot:
                name = rng.choice(names[slot])
                text = q.replace("{" + slot + ":title}", normalize(name)).replace("{" + slot + "}", name)
                ref = f"{slot}:default/{name}" if kind == slot else None
            out.append(Case(q=text, cmd=template.get("cmd"), ref=ref, topic=template.get("topic"),
                            expect=template.get("expect", "OK")))
    return out


@pytest.fixture
async def generated_app(tmp_path: Path) -> AsyncIterator[tuple[Callboard, Path]]:
    catalog = tmp_path / "generated" / "catalog.yaml"
    catalog.parent.mkdir()
    subprocess.run([sys.executable, str(_generator()), "-n", "2000", "-o", str(catalog), "--seed", "42"],
                   check=True, capture_output=True)
    app = await Callboard.open(
        Settings(database_url=f"sqlite:///{tmp_path / 'generated.db'}", data_dir=str(tmp_path / "data")),
        CommandRegistry.from_entry_points(), resident=True)
    try:
        summary = await app.sync((str(catalog),))
        assert not summary.errors, summary.errors[:3]
        yield app, catalog
    finally:
        await app.close()


@pytest.mark.reference
async def test_labelled_phrasings_over_a_generated_catalog(generated_app: tuple[Callboard, Path]) -> None:
    app, catalog = generated_app
    names = _entities(catalog)
    assert {"component", "api", "group", "system", "resource", "user", "domain"} <= set(names)
    cases = generated_cases(names)
    assert len(cases) >= 60
    misses = await run_cases(app, cases)
    assert not misses, f"{len(misses)}/{len(cases)} wrong:\n" + "\n".join(misses)


def test_the_labelled_set_is_big_enough() -> None:
    """At least 150 phrasings in all (the generated templates count once per name they are asked with)."""
    n_generated = sum(PER_TEMPLATE if "{" in t["q"] else 1 for t in LABELS["generated"])
    assert len(LABELS["demo"]) + n_generated >= 150
