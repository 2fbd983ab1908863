"""Picker typeahead at catalog scale: ``picker_options`` per keystroke, the fuzzy path before and the
word-prefix completion now.

    python bench/bench_typeahead.py [--catalog /tmp/cat/catalog-100000.yaml] [--seed 1]

The catalog (generated there with ``/work/shared/bench/gen_catalog.py --seed 42`` when missing) is
read with PyYAML's C loader into (key, name, title) rows, as ``storage.repo.index_rows`` would give
them after a sync, and the index is built from them the way ``Catalog.load_index`` builds it. No
database: the index and ``picker_options`` are all that a keystroke runs.

Queries (``random.Random(--seed)``):

- prefixes: 2,000 names drawn from the catalog, each cut to a random length from 3 characters to
  its whole length, as a person types it (``tax-pro``);
- typos: 500 names with one typo each, at a random letter: a letter dropped, two adjacent letters
  swapped, or a letter replaced.

Each query goes through ``picker_options(catalog, query)`` (limit 20, no kinds) twice: ``old`` is
the body it had before the word-prefix index (``catalog.search`` and the same labels), ``new`` is
the function itself (``catalog.complete``). Both run on the same index, in turns, after a warm-up;
latencies are per call with ``time.perf_counter()``, percentiles nearest-rank. ``found`` is the share
of queries whose source name is among the options (the name the prefix was cut from, the name the
typo was made in). A prefix always starts the name it was cut from, so the word-prefix index
answers every prefix query and the fuzzy search every typo query (the output counts both).

Memory: ``tracemalloc`` over the build of the index (what the whole index holds, and the peak while
building), and the word-prefix part alone (its arrays, from ``sys.getsizeof``). Maintenance: the
build time, and ``update`` with 1, 100 and 1,000 new entities or renames, as a sync's change feed
applies them (the word-prefix index adds to each).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import yaml
from sqlalchemy.ext.asyncio import create_async_engine

from callboard.catalog.search import SearchIndex, normalize
from callboard.catalog.service import Catalog
from callboard.commands._lookup import kind_of
from callboard.commands.find import picker_options

Row = tuple[str, str, str | None]
GEN = "/work/shared/bench/gen_catalog.py"


def rows_from(path: Path) -> list[Row]:
    rows: list[Row] = []
    with path.open() as f:
        for doc in yaml.load_all(f, Loader=yaml.CSafeLoader):
            if not isinstance(doc, dict):
                continue
            meta = doc.get("metadata") or {}
            name = meta["name"]
            title = meta.get("title") if isinstance(meta.get("title"), str) else None
            rows.append((f"{doc['kind']}:{meta.get('namespace', 'default')}/{name}".lower(), name, title))
    return rows


def old_picker_options(catalog: Catalog, query: str, limit: int = 20,
                       kinds: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """``commands.find.picker_options`` as it was before ``complete``: the fuzzy search."""
    if not query.strip():
        return []
    result = catalog.search(query, kinds=[k.lower() for k in kinds] or None, limit=limit)
    return [(c.key, f"{c.name} ({kind_of(c.key)})" + (f" · {c.title}" if c.title and c.title != c.name else ""))
            for c in result.candidates]


def typo(name: str, rng: random.Random) -> str:
    letters = [i for i, ch in enumerate(name) if ch.isalpha()]
    i = rng.choice(letters)
    edit = rng.choice(("drop", "swap", "replace"))
    if edit == "drop":
        return name[:i] + name[i + 1:]
    if edit == "swap" and i + 1 < len(name) and name[i + 1] != name[i]:
        return name[:i] + name[i + 1] + name[i] + name[i + 2:]
    other = rng.choice([c for c in "abcdefghijklmnopqrstuvwxyz" if c != name[i]])
    return name[:i] + other + name[i + 1:]


def pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))]


def line(label: str, secs: Sequence[float]) -> str:
    ms = [s * 1e3 for s in secs]
    return (f"  {label:<36} n={len(ms):<5} median {statistics.median(ms):7.3f} ms   p90 {pct(ms, 90):7.3f} ms"
            f"   p99 {pct(ms, 99):7.3f} ms")


Picker = Callable[[Catalog, str], list[tuple[str, str]]]


def timed(fns: Sequence[Picker], catalog: Catalog, queries: Sequence[str]) -> list[list[float]]:
    """Per-call latencies of each of ``fns`` over ``queries``, interleaved (each query by each in
    turn, the order alternating) so that a change in the machine's load falls on all of them."""
    out: list[list[float]] = [[] for _ in fns]
    for i, q in enumerate(queries):
        order = list(enumerate(fns)) if i % 2 == 0 else list(enumerate(fns))[::-1]
        for j, fn in order:
            started = time.perf_counter()
            fn(catalog, q)
            out[j].append(time.perf_counter() - started)
    return out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}, "
            f"{platform.system()} {platform.release()}, load average {os.getloadavg()[0]:.2f}")


def maintenance(rows: list[Row]) -> None:
    started = time.perf_counter()
    index = SearchIndex()
    index.update(rows, ())
    print(f"  build (update with {len(rows):,} rows, one sort): {time.perf_counter() - started:.2f} s")
    rng = random.Random(3)
    for n in (1, 100, 1000):
        new = [(f"component:default/bench-new-{n}-{i}", f"bench-new-{n}-{i}", None) for i in range(n)]
        started = time.perf_counter()
        index.update(new, ())
        added = time.perf_counter() - started
        renamed = [(key, f"{name}-renamed", title) for key, name, title in rng.sample(rows, n)]
        started = time.perf_counter()
        index.update(renamed, ())
        print(f"  update: {n:>5} new entities {added * 1e3:8.1f} ms, {n:>5} renames {(time.perf_counter() - started) * 1e3:8.1f} ms")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--catalog", type=Path, default=Path("/tmp/cat/catalog-100000.yaml"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--prefixes", type=int, default=2000)
    ap.add_argument("--typos", type=int, default=500)
    args = ap.parse_args(argv)
    if not args.catalog.exists():
        args.catalog.parent.mkdir(parents=True, exist_ok=True)
        size = "".join(ch for ch in args.catalog.stem if ch.isdigit()) or "100000"
        subprocess.run([sys.executable, GEN, "-n", size, "-o", str(args.catalog), "--seed", "42"], check=True)
    print(f"machine: {machine()}")
    started = time.perf_counter()
    rows = rows_from(args.catalog)
    print(f"catalog: {args.catalog} ({len(rows):,} entities, {sum(1 for r in rows if r[2]):,} with a title), "
          f"read in {time.perf_counter() - started:.1f} s")

    tracemalloc.start()
    index = SearchIndex()
    for row in rows:
        index.add(*row)  # the word-prefix entries wait, unsorted, for the one sort below
    pending = len(index._pending)
    before, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    index._settle()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    prefix_part = sys.getsizeof(index._words) + sys.getsizeof(index._kind_codes) + sys.getsizeof(index._kind_ids)
    print("memory (tracemalloc):")
    print(f"  the whole index holds {held / 2**20:.1f} MiB; the one sort of the word starts peaks "
          f"{(peak - before) / 2**20:.1f} MiB above what the index held before it (its keys, for a moment)")
    print(f"  of which the word-prefix index {prefix_part / 2**20:.2f} MiB: {pending:,} word starts x 8 bytes, "
          f"and a kind code per entity (4 bytes)")

    engine = create_async_engine("sqlite+aiosqlite://")  # never connected: nothing here reads storage
    catalog = Catalog(engine, index)
    rng = random.Random(args.seed)
    names = [rng.choice(rows)[1] for _ in range(args.prefixes)]
    prefixes = [name[: rng.randint(3, len(name))] for name in names]
    typo_names = [rng.choice(rows)[1] for _ in range(args.typos)]
    typos = [typo(name, rng) for name in typo_names]

    def new(c: Catalog, q: str) -> list[tuple[str, str]]:
        return picker_options(c, q)

    timed((old_picker_options, new), catalog, prefixes[:200] + typos[:50])  # warm-up
    results: dict[str, dict[str, list[float]]] = {"old": {}, "new": {}}
    for kind, queries in (("prefixes", prefixes), ("typos", typos)):
        results["old"][kind], results["new"][kind] = timed((old_picker_options, new), catalog, queries)

    def found(fn: Picker, queries: list[str], sources: list[str]) -> float:
        return sum(any(label.startswith(f"{src} (") for _, label in fn(catalog, q))
                   for q, src in zip(queries, sources)) / len(queries)

    print("picker_options at", f"{len(rows):,} entities (limit 20):")
    for kind, queries, sources in (("prefixes", prefixes, names), ("typos", typos, typo_names)):
        for label, fn in (("old", old_picker_options), ("new", new)):
            print(line(f"{kind}, {label} (found {found(fn, queries, sources):.0%})", results[label][kind]))
    for kind, queries in (("prefix", prefixes), ("typo", typos)):
        answered = sum(1 for q in queries if index._prefixed(normalize(q), None, 1, set()))
        print(f"  {kind} queries answered by the word-prefix index: {answered} of {len(queries)}, "
              f"by the fuzzy search: {len(queries) - answered}")
    print("maintenance:")
    maintenance(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
