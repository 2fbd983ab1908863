"""Reading a long docs page or a large catalog file never stalls the event loop.

A heartbeat task ticks every millisecond while the work runs; its longest gap is how long
the loop (Slack's acks, every other answer) stood still. Each test first runs the same work on
the loop itself as a control: the gap is then as long as the work, which proves the work is
big enough to matter and the heartbeat sees a stall. A worker thread still shares the GIL,
so the loop gets it back at every switch interval (5 ms) and the gap is a small part of the
stall. A loaded host (other test runs on the same cores, other threads of the test process
holding the GIL) only ever makes gaps longer, so each check gets a few tries and passes on the
first where the gap is under 70 % of the control's; work left on the loop gives a gap as long
as the control's, or longer.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import create_async_engine

from callboard.catalog.model import CatalogError, UnchangedDocument
from callboard.catalog.sync import LocationSpec
from callboard.providers.files import FileSource, _split
from callboard.providers.techdocs.content import section_parts
from callboard.providers.techdocs.service import TechDocs

KEY = "component:default/big"
WORDS = [f"word{i}" for i in range(2000)]


async def _max_gap(work: Callable[[], Awaitable[Any]]) -> tuple[float, float, Any]:
    """(longest heartbeat gap, how long ``work`` took, its result)."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def beat() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(beat())
    await asyncio.sleep(0.02)  # the heartbeat is running
    gaps.clear()
    # a garbage collection pauses every thread alike: measured here is the work, not the collector
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        result = await work()
        took = time.perf_counter() - started
        await asyncio.sleep(0.005)  # one more beat after the work
    finally:
        gc.enable()
    done.set()
    await task
    return max(gaps), took, result


def _long_page(site: Path) -> None:
    rnd = random.Random(7)
    body = "".join(
        f"<h2 id='h{i}'>Heading {i}</h2><p>{' '.join(rnd.choice(WORDS) for _ in range(100))}</p>"
        for i in range(2500)
    )
    site.mkdir(parents=True)
    (site / "index.html").write_text(f"<html><body><article><h1>Big</h1>{body}</article></body></html>")


async def _responsive(
    blocking: Callable[[], Awaitable[Any]], off_loop: Callable[[], Awaitable[Any]], tries: int = 5
) -> tuple[Any, Any]:
    """Run the control (``blocking``, on the loop) and ``off_loop`` until the loop's longest gap
    under ``off_loop`` is well below the control's; return both results."""
    seen = []
    for _ in range(tries):
        blocked_gap, blocked_took, expected = await _max_gap(blocking)
        # the control: on the loop, the work stalls it for as long as it takes (and that is long)
        assert blocked_took > 0.05 and blocked_gap > 0.8 * blocked_took, (blocked_gap, blocked_took)
        gap, _took, result = await _max_gap(off_loop)
        seen.append((round(gap, 3), round(blocked_gap, 3)))
        if gap < 0.7 * blocked_gap:
            return expected, result
    raise AssertionError(f"the loop stalled as if the work ran on it: (gap, control gap) {seen}")


async def test_reading_a_long_docs_page_leaves_the_loop_responsive(tmp_path: Path) -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    try:
        docs = TechDocs(engine, tmp_path / "store")
        site = docs.site_dir(KEY)
        _long_page(site)

        async def on_the_loop() -> Any:
            return section_parts(site, "")

        expected, parts = await _responsive(on_the_loop, lambda: docs.parts(KEY, ""))
    finally:
        await engine.dispose()
    assert parts == expected and len(parts) == 60


async def test_docs_search_and_sections_answer_from_a_thread(tmp_path: Path) -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    try:
        docs = TechDocs(engine, tmp_path / "store")
        assert await docs.search("anything") == [] and await docs.sections(KEY) == []
        assert not await docs.has_index()
        from callboard.providers.techdocs.index import Section

        await asyncio.to_thread(docs.index.replace_many, [(KEY, [Section("failover/", "Failover", "Failover", "promote the replica")])])
        assert await docs.has_index()
        (hit,) = await docs.search("replica")
        assert (hit.entity, hit.location) == (KEY, "failover/")
        assert [s.title for s in await docs.sections(KEY)] == ["Failover"]
    finally:
        await engine.dispose()


def _catalog(n: int) -> bytes:
    return "".join(
        f"---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: svc-{i}\n"
        f"  description: {' '.join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(12))}\n"
        f"spec:\n  type: service\n  lifecycle: production\n  owner: team-{i % 50}\n"
        for i in range(n)
    ).encode()


async def test_splitting_a_large_catalog_file_leaves_the_loop_responsive(tmp_path: Path) -> None:
    path = tmp_path / "catalog-info.yaml"
    # large enough that the work (~0.2 s alone, ~0.7 s late in the full suite) stands well above the
    # fixed hiccup of handing it to a thread and back (40-60 ms here, up to ~160 ms late in the suite),
    # which does not grow with the work: measured is that the work itself leaves the loop free
    content = _catalog(60_000)
    path.write_bytes(content)
    spec = LocationSpec(type="file", target=str(path))

    docs = _split([content], spec)
    assert not isinstance(docs, CatalogError) and len(docs) == 60_000
    # every document known: the source only splits the file and finds them unchanged
    known = {d.source_hash: f"component:default/svc-{i}" for i, d in enumerate(docs)}
    source = FileSource([tmp_path], workers=1)

    async def on_the_loop() -> Any:
        return _split([content], spec)

    async def through_the_source() -> Any:
        return [batch async for batch in source.process(spec, content, known)]

    try:
        _, batches = await _responsive(on_the_loop, through_the_source)
    finally:
        source.close()
    assert [type(i) for i in batches[0][:1]] == [UnchangedDocument] and sum(len(b) for b in batches) == 60_000
